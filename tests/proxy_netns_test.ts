/**
 * Interception inside a network namespace created here (root and iptables required):
 *
 *   namespace emproxy-<pid>
 *     lo, veth em0 198.18.0.1/24 (peer em1 in the same namespace), route 198.19.0.0/16 dev em0
 *     child process: backend on 198.18.0.1:<b>, proxy listeners on 198.18.0.1:<p>
 *     curl 198.19.0.10:80 ──OUTPUT DNAT (EDGEMESH-SERVICES)──▶ 198.18.0.1:<p> ──▶ backend
 *     curl [fd98:19::10]:80 ──ip6tables DNAT──▶ [fd98:18::1]:<p6> ──▶ backend (dual-stack)
 *     em0 also holds fd98:18::1/64, route fd98:19::/64 dev em0 (namespace-local ULAs)
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { nullLogger } from "../mod/log/mod.ts";
import { cleanup, commandRunner, Proxier } from "../mod/proxy/mod.ts";
import { run } from "./support/backends.ts";
import { waitFor } from "./support/wait.ts";

async function withNamespace(tag: string, fn: (ns: string) => Promise<void>): Promise<void> {
  const ns = `em${tag}-${Deno.pid}`;
  await run("ip", ["netns", "add", ns]);
  try {
    await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
    await run("ip", ["-n", ns, "link", "add", "em0", "type", "veth", "peer", "name", "em1"]);
    await run("ip", ["-n", ns, "link", "set", "em1", "up"]);
    await run("ip", ["-n", ns, "addr", "add", "198.18.0.1/24", "dev", "em0"]);
    await run("ip", ["-n", ns, "link", "set", "em0", "up"]);
    await run("ip", ["-n", ns, "route", "add", "198.19.0.0/16", "dev", "em0"]);
    await run("ip", ["-n", ns, "addr", "add", "fd98:18::1/64", "dev", "em0", "nodad"]);
    await run("ip", ["-n", ns, "route", "add", "fd98:19::/64", "dev", "em0"]);
    await fn(ns);
  } finally {
    await run("ip", ["netns", "del", ns]);
  }
}

const inNs = (ns: string, cmd: string, args: string[]) =>
  run("ip", ["netns", "exec", ns, cmd, ...args]);

async function curlCode(ns: string, url: string): Promise<{ code: number; body: string }> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, "curl", "-g", "-s", "--max-time", "5", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, body: new TextDecoder().decode(out.stdout) };
}

Deno.test("interception: curl http://<ClusterIP>:80 reaches the backend; rules are gone after stop", async () => {
  await withNamespace("proxy", async (ns) => {
    // A stale rule as left by a crashed run.
    await inNs(ns, "iptables", ["-t", "nat", "-N", "EDGEMESH-SERVICES"]);
    await inNs(ns, "iptables", [
      "-t",
      "nat",
      "-A",
      "EDGEMESH-SERVICES",
      "-d",
      "198.19.9.9/32",
      "-p",
      "tcp",
      "--dport",
      "1",
      "-j",
      "DNAT",
      "--to-destination",
      "198.18.0.1:1",
    ]);
    await inNs(ns, "iptables", ["-t", "nat", "-A", "OUTPUT", "-j", "EDGEMESH-SERVICES"]);

    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "--unstable-net",
        "-A",
        new URL("./support/ns_proxy_main.ts", import.meta.url).pathname,
        "198.18.0.1",
        "fd98:18::1",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines: string[] = [];
    const stderr: string[] = [];
    const readOut = (async () => {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        lines.push(...chunk.split("\n").filter(Boolean));
      }
    })();
    const readErr = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        stderr.push(chunk);
      }
    })();
    const writer = child.stdin.getWriter();
    let status: Deno.CommandStatus;
    try {
      await waitFor(
        () => lines.some((l) => l.includes('"ready"')),
        `proxy ready (stderr: ${stderr.join("")})`,
        20_000,
        50,
      );
      const saved = await inNs(ns, "iptables-save", []);
      assert(saved.includes("198.19.0.10/32"), saved);
      assert(!saved.includes("198.19.9.9"), "stale rule survived start");
      assertEquals(saved.match(/-A OUTPUT .*EDGEMESH-SERVICES/g)?.length, 1, saved);

      assertEquals(await curlCode(ns, "http://198.19.0.10:80/"), { code: 0, body: "backend" });
      assertEquals(await curlCode(ns, "http://198.18.0.1:30080/"), { code: 0, body: "backend" }); // NodePort
      assertEquals(await curlCode(ns, "http://[fd98:19::10]:80/"), { code: 0, body: "backend" });
      const saved6 = await inNs(ns, "ip6tables-save", []);
      assert(saved6.includes("fd98:19::10/128"), saved6);
      const t0 = performance.now();
      const empty = await curlCode(ns, "http://198.19.0.11:80/");
      assertEquals(empty.code, 7); // connection refused by the REJECT tcp-reset rule
      assert(performance.now() - t0 < 3000);

      await writer.write(new TextEncoder().encode("stop\n"));
      await waitFor(() => lines.some((l) => l.includes('"stopped"')), "proxy stopped", 10_000, 50);
      const after = await inNs(ns, "iptables-save", []) + await inNs(ns, "ip6tables-save", []);
      assert(!after.includes("EDGEMESH"), after);
      assert((await curlCode(ns, "http://198.19.0.10:80/")).code !== 0);
    } finally {
      await writer.close().catch(() => undefined);
      status = await child.status;
      await readOut;
      await readErr;
    }
    assert(status.success, `child failed (${status.code}): ${stderr.join("")}`);
  });
});

Deno.test("Proxier.sync() is idempotent and cleanup() removes every EDGEMESH rule", async () => {
  await withNamespace("rules", async (ns) => {
    const runner = commandRunner(["ip", "netns", "exec", ns]);
    const proxier = new Proxier({ runner, logger: nullLogger() });
    await proxier.start();
    const rules = [
      {
        comment: "default/a:80/tcp",
        clusterIPs: ["198.19.3.1"],
        port: 80,
        protocol: "tcp" as const,
        listenAddress: "198.18.0.1",
        listenPort: 40000,
        hasEndpoints: true,
      },
      {
        comment: "default/b:53/udp",
        clusterIPs: ["198.19.3.2"],
        port: 53,
        protocol: "udp" as const,
        nodePort: 30053,
        listenAddress: "198.18.0.1",
        listenPort: 40001,
        hasEndpoints: false,
      },
    ];
    await proxier.sync(rules);
    const once = await inNs(ns, "iptables-save", []);
    await proxier.sync(rules);
    const twice = await inNs(ns, "iptables-save", []);
    const strip = (s: string) =>
      s.split("\n").filter((l) => !l.startsWith("#") && !l.startsWith(":")).join("\n");
    assertEquals(strip(twice), strip(once));
    assert(once.includes("-j REJECT --reject-with icmp-port-unreachable"), once);
    assertEquals(await cleanup(runner) > 0, true);
    const after = await inNs(ns, "iptables-save", []);
    assert(!after.includes("EDGEMESH"), after);
    assertEquals(await cleanup(runner), 0);
  });
});
