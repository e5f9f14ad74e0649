/**
 * The agent process: admin API, readiness, metrics, status, hot reload, clean SIGTERM.
 * Modules are disabled here; each module's own tests cover it.
 */
import { equal, match, ok } from "node:assert/strict";
import { stringify } from "yaml";
import { startAgent } from "./support/agent.ts";
import { waitFor } from "./support/wait.ts";

const quietConfig = (logLevel = "info") => ({
  nodeName: "agent-test",
  logLevel,
  kubeAPIConfig: { manifestDir: "examples/manifests" },
  modules: {
    edgeDNS: { enable: false },
    edgeProxy: { enable: false },
    edgeTunnel: { enable: false },
    edgeHealth: { enable: false },
    edgeGateway: { enable: false },
  },
});

Deno.test("the agent serves /healthz, /readyz, /metrics and /api/v1/status, and stops cleanly on SIGTERM", async () => {
  const agent = await startAgent({ config: quietConfig() });
  try {
    const base = await agent.adminUrl();
    equal(await (await fetch(`${base}/healthz`)).text(), "ok\n");
    const ready = await waitFor(
      async () => (await fetch(`${base}/readyz`)).status === 200 || undefined,
      { what: "readyz 200" },
    );
    ok(ready);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    match(metrics, /^# HELP edgemesh_build_info /m);
    match(metrics, /^process_resident_memory_bytes \d+/m);
    const status = await (await fetch(`${base}/api/v1/status`)).json();
    equal(status.node, "agent-test");
    match(status.version, /^\d+\.\d+\.\d+/);
    equal(typeof status.uptimeSeconds, "number");
    ok(
      Array.isArray(status.peers) && Array.isArray(status.relays) && Array.isArray(status.services),
    );
    equal((await fetch(`${base}/nope`)).status, 404);
    await (await fetch(`${base}/nope`)).body?.cancel();
    const t0 = performance.now();
    const code = await agent.stop("SIGTERM");
    equal(code, 0, agent.dumpLogs());
    ok(performance.now() - t0 < 5000, "stopped within 5 s");
    ok(agent.logs.some((l) => l.msg === "stopped"));
  } finally {
    await agent.stop("SIGKILL");
  }
});

Deno.test("SIGINT stops the agent too", async () => {
  const agent = await startAgent({ config: quietConfig() });
  try {
    await agent.adminUrl();
    equal(await agent.stop("SIGINT"), 0);
  } finally {
    await agent.stop("SIGKILL");
  }
});

Deno.test("logs are JSON lines with ts, level, component and msg; a missing config file is said", async () => {
  const agent = await startAgent({ config: quietConfig(), args: [] });
  try {
    await agent.adminUrl();
    for (const l of agent.logs) {
      ok(
        typeof l.ts === "string" && typeof l.level === "string" && typeof l.msg === "string",
        JSON.stringify(l),
      );
      ok("component" in l);
    }
  } finally {
    await agent.stop();
  }
});

Deno.test("hot reload applies a valid change live and keeps the last good config on an invalid one", async () => {
  const agent = await startAgent({ config: quietConfig("info") });
  try {
    const base = await agent.adminUrl();
    // Valid change: log level to debug is applied without restart.
    await Deno.writeTextFile(
      agent.configPath,
      stringify({ ...quietConfig("debug"), commonConfig: currentCommon(agent.configPath) }),
    );
    await agent.waitLog(
      (l) => l.msg === "config reloaded" && (l.applied as string[]).includes("logLevel"),
      "reload applied",
    );
    // Invalid change: every error logged, agent keeps serving.
    await Deno.writeTextFile(
      agent.configPath,
      "logLevel: loud\nmodules:\n  edgeDNS:\n    listenPort: 70000\n",
    );
    const rejected = await agent.waitLog(
      (l) => l.msg === "config change rejected; keeping the last good config",
      "rejection",
    );
    equal((rejected.errors as string[]).length, 2, JSON.stringify(rejected));
    match((rejected.errors as string[])[0], /edgemesh\.yaml:1:1: logLevel: must be one of/);
    equal((await fetch(`${base}/healthz`)).status, 200);
    await (await fetch(`${base}/healthz`)).body?.cancel();
    const m = await (await fetch(`${base}/metrics`)).text();
    match(m, /edgemesh_config_reloads_total\{result="rejected"\} [1-9]/);
    equal(await agent.stop(), 0);
  } finally {
    await agent.stop("SIGKILL");
  }
});

Deno.test("an invalid config at start exits 2 with every error and starts nothing", async () => {
  const agent = await startAgent({ config: { ...quietConfig(), logLevel: "loud", bogus: 1 } });
  const code = await agent.exited;
  equal(code, 2);
  const err = agent.stderr.join("\n");
  match(err, /logLevel: must be one of/);
  match(err, /bogus: unknown key/);
  await agent.stop();
});

function currentCommon(configPath: string): Record<string, unknown> {
  const dir = configPath.slice(0, configPath.lastIndexOf("/"));
  return { stateDir: `${dir}/state`, adminAddress: "127.0.0.1:0" };
}
