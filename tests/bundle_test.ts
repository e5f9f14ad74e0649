/** The bundle needs nothing beside itself: no node_modules, no network, no config. */
import { equal, match } from "node:assert/strict";
import { PROJECT_ROOT, runCli, startAgent } from "./support/agent.ts";
import { waitFor } from "./support/wait.ts";

Deno.test("deno task bundle makes dist/edgemesh.js that runs alone from an empty folder", async () => {
  const b = await new Deno.Command(Deno.execPath(), {
    args: ["task", "bundle"],
    cwd: PROJECT_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(b.code, 0, new TextDecoder().decode(b.stderr));
  const dir = await Deno.makeTempDir({ prefix: "edgemesh-bundle-" });
  try {
    await Deno.copyFile(`${PROJECT_ROOT}dist/edgemesh.js`, `${dir}/edgemesh.js`);
    const opts = {
      script: "edgemesh.js",
      cwd: dir,
      permissions: ["-A", "--no-remote", "--cached-only", "--no-config"],
    };
    const v = await runCli(["version"], opts);
    equal(v.code, 0, v.stderr);
    match(v.stdout, /^edgemesh \d+\.\d+\.\d+ /);
    const d = await runCli(["config", "defaults"], opts);
    equal(d.code, 0, d.stderr);
    match(d.stdout, /listenPort: 20006/);
    const entries = [...Deno.readDirSync(dir)].map((e) => e.name);
    equal(entries.join(","), "edgemesh.js", "nothing was fetched or created beside the bundle");
    // The agent itself runs from the lone bundle, with the batched DNS worker embedded.
    await Deno.mkdir(`${dir}/manifests`);
    await Deno.copyFile(
      `${PROJECT_ROOT}examples/manifests/cluster.yaml`,
      `${dir}/manifests/cluster.yaml`,
    );
    const agent = await startAgent({
      ...opts,
      config: {
        nodeName: "edge-local-1",
        kubeAPIConfig: { manifestDir: `${dir}/manifests` },
        modules: {
          edgeDNS: { listenAddress: "127.0.0.1", listenPort: 0, upstreamServers: ["127.0.0.1:9"] },
          edgeProxy: { enable: false },
          edgeTunnel: { enable: false },
          edgeHealth: { enable: false },
        },
      },
    });
    try {
      const base = await agent.adminUrl();
      const status = await waitFor(async () => {
        const s = await (await fetch(`${base}/api/v1/status`)).json();
        return s.dns?.listeners?.length ? s : undefined;
      }, { what: "dns listener in status" });
      equal(status.dns.listeners[0].udp, "batched", JSON.stringify(status.dns));
      const port = status.dns.listeners[0].address.split(":").pop();
      const dig = await new Deno.Command("dig", {
        args: [
          "@127.0.0.1",
          "-p",
          port,
          "+short",
          "hostname-lb-svc.edgemesh-test.svc.cluster.local",
        ],
        stdout: "piped",
      }).output();
      equal(new TextDecoder().decode(dig.stdout).trim(), "198.19.0.10");
      equal(await agent.stop(), 0);
    } finally {
      await agent.stop("SIGKILL");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
