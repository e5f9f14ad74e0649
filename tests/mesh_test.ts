/**
 * Three agents (main.ts) on loopback: one relay and two edge nodes. The tunnel as the agent
 * wires it: status peers and relays, `edgemesh ping`, relays added by hot reload, and a weak
 * PSK refused at start.
 *   relay-1 127.0.3.11    edge-a 127.0.3.21    edge-b 127.0.3.22
 */
import { equal, match, ok } from "node:assert/strict";
import { stringify } from "yaml";
import { freePort } from "../mod/hostnet/mod.ts";
import { runCli, startAgent } from "./support/agent.ts";
import { waitFor } from "./support/wait.ts";

const NODES = [
  { name: "relay-1", ip: "127.0.3.11" },
  { name: "relay-2", ip: "127.0.3.12" },
  { name: "edge-a", ip: "127.0.3.21" },
  { name: "edge-b", ip: "127.0.3.22" },
];

async function cluster(dir: string): Promise<string> {
  await Deno.mkdir(`${dir}/manifests`, { recursive: true });
  const docs = NODES.map((n) => ({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: n.name },
    status: {
      addresses: [{ type: "InternalIP", address: n.ip }],
      conditions: [{ type: "Ready", status: "True" }],
    },
  }));
  await Deno.writeTextFile(
    `${dir}/manifests/nodes.yaml`,
    docs.map((d) => stringify(d)).join("---\n"),
  );
  const psk = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  await Deno.writeTextFile(`${dir}/psk`, psk);
  return `${dir}/psk`;
}

function config(
  node: { name: string; ip: string },
  dir: string,
  psk: string,
  port: number,
  relays: { nodeName: string; advertiseAddress: string[] }[],
) {
  return {
    nodeName: node.name,
    kubeAPIConfig: { manifestDir: `${dir}/manifests` },
    modules: {
      edgeDNS: { enable: false },
      edgeProxy: { enable: false },
      edgeHealth: { enable: false },
      edgeTunnel: {
        listenAddress: node.ip,
        listenPort: port,
        mdns: { enable: false },
        psk: { path: psk },
        relayNodes: relays,
      },
    },
  };
}

Deno.test("agents mesh through a relay: status, edgemesh ping, and a relay added by hot reload", async () => {
  const dir = await Deno.makeTempDir();
  const psk = await cluster(dir);
  const ports = NODES.map((n) => freePort(n.ip));
  const relayOf = (i: number) => ({
    nodeName: NODES[i].name,
    advertiseAddress: [`${NODES[i].ip}:${ports[i]}`],
  });
  const started = [];
  try {
    const r1 = await startAgent({ config: config(NODES[0], dir, psk, ports[0], [relayOf(0)]) });
    started.push(r1);
    const a = await startAgent({ config: config(NODES[2], dir, psk, ports[2], [relayOf(0)]) });
    started.push(a);
    const b = await startAgent({ config: config(NODES[3], dir, psk, ports[3], [relayOf(0)]) });
    started.push(b);
    const base = await a.adminUrl();
    await waitFor(async () => {
      const s = await (await fetch(`${base}/api/v1/status`)).json();
      return s.relays.some((r: { node: string; reserved: boolean }) =>
        r.node === "relay-1" && r.reserved
      );
    }, { what: "edge-a reserved on relay-1", timeoutMs: 10_000 });
    const adminAddr = base.replace("http://", "");
    const ping = await waitFor(async () => {
      const r = await runCli(["ping", "edge-b", "--admin", adminAddr, "--count", "2"]);
      return r.code === 0 ? r : undefined;
    }, { what: "edgemesh ping edge-b", timeoutMs: 10_000 });
    match(ping.stdout, /^edge-b: (tunnel-direct|via relay relay-1), rtt \d+\.\d\d ms$/m);
    const unknown = await runCli(["ping", "nobody", "--admin", adminAddr, "--count", "1"]);
    equal(unknown.code, 1);
    match(unknown.stdout, /nobody: .*not a cluster node/);
    const st = await runCli(["status", "--admin", adminAddr]);
    equal(st.code, 0, st.stderr);
    match(st.stdout, /RELAYS \(1\)[^\n]*\n\s+relay-1 +primary/);
    match(st.stdout, /tunnel +ready/);

    // A second relay appears in the local config: applied live, no restart.
    const r2 = await startAgent({ config: config(NODES[1], dir, psk, ports[1], [relayOf(1)]) });
    started.push(r2);
    const next = config(NODES[2], dir, psk, ports[2], [relayOf(0), relayOf(1)]);
    const current = await Deno.readTextFile(a.configPath);
    ok(current.includes("relay-1"));
    await Deno.writeTextFile(
      a.configPath,
      stringify({
        ...next,
        commonConfig: { stateDir: `${a.dir}/state`, adminAddress: "127.0.0.1:0" },
      }),
    );
    await a.waitLog(
      (l) =>
        l.msg === "config reloaded" &&
        (l.applied as string[]).includes("modules.edgeTunnel.relayNodes"),
      "relay reload",
    );
    await waitFor(async () => {
      const s = await (await fetch(`${base}/api/v1/status`)).json();
      return s.relays.filter((r: { reserved: boolean }) => r.reserved).length === 2;
    }, { what: "edge-a reserved on both relays", timeoutMs: 10_000 });
  } finally {
    for (const s of started.reverse()) await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a weak or missing PSK stops the agent at start with the command to make one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await cluster(dir);
    await Deno.writeTextFile(`${dir}/weak`, "0000000000000000000000000000000000000000");
    for (
      const [file, re] of [[`${dir}/weak`, /weak key/], [
        `${dir}/absent`,
        /Cannot read the PSK file/,
      ]] as const
    ) {
      const agent = await startAgent({ config: config(NODES[2], dir, file, 0, []) });
      equal(await agent.exited, 2);
      const err = agent.stderr.join("\n");
      match(err, re);
      match(err, /openssl rand -base64 32 >/);
      await agent.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
