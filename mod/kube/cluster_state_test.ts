import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { memoryLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { TestMetaServer } from "../../tests/support/metaserver.ts";
import { waitFor } from "../../tests/support/wait.ts";
import { ClusterState, type ClusterStateOptions } from "./cluster_state.ts";
import { SNAPSHOT_FILE } from "./snapshot.ts";
import type { HealthConfig } from "./agent_configmaps.ts";

const NS = `cs-${Deno.pid}`;

function svc(name: string, ip = "198.19.0.7") {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: NS, name },
    spec: { clusterIP: ip, ports: [{ port: 80, protocol: "TCP" }] },
  };
}

function options(o: Partial<ClusterStateOptions>): ClusterStateOptions {
  return {
    source: "metaserver",
    metaServer: "",
    kubeConfig: "",
    master: "",
    manifestDir: "",
    stateDir: "",
    qps: 100,
    burst: 200,
    snapshotDebounceMs: 20,
    backoffInitialMs: 50,
    backoffMaxMs: 300,
    requestTimeoutMs: 1000,
    ...o,
  };
}

Deno.test("ClusterState syncs from the metaserver and picks up a Service added after start within 1 s", async () => {
  await using ms = await TestMetaServer.start({ objects: [svc("first")] });
  const metrics = new Registry();
  const cs = new ClusterState(
    { logger: memoryLogger().logger, metrics },
    options({ metaServer: ms.url }),
  );
  try {
    await cs.start(new AbortController().signal);
    assertEquals(cs.status().state, "ready");
    assert(cs.store.get("services", NS, "first"));
    const t0 = performance.now();
    ms.apply(svc("second"));
    await waitFor(() => cs.store.get("services", NS, "second"), "service added after start", 1000);
    assert(performance.now() - t0 < 1000);
    const d = cs.details();
    assertEquals([d.synced, d.degraded, d.counts.services], [true, false, 2]);
    assert(metrics.render().includes(`edgemesh_cluster_objects{kind="services"} 2`));
  } finally {
    await cs.stop();
  }
  assertEquals(cs.status().state, "stopped");
});

Deno.test("ClusterState restarted without its metaserver serves the snapshot within a second, then resyncs", async () => {
  const stateDir = await Deno.makeTempDir();
  try {
    const ms = await TestMetaServer.start({ objects: [svc("kept"), svc("gone")] });
    const port = ms.port;
    const first = new ClusterState(
      { logger: memoryLogger().logger },
      options({ metaServer: ms.url, stateDir }),
    );
    await first.start(new AbortController().signal);
    await first.stop(); // flushes the snapshot
    await ms.stop();

    // The metaserver is down: start must not wait for it.
    const { logger, lines } = memoryLogger();
    const second = new ClusterState({ logger }, options({ metaServer: ms.url, stateDir }));
    try {
      const t0 = performance.now();
      await second.start(new AbortController().signal);
      assert(performance.now() - t0 < 1000, `start took ${performance.now() - t0} ms`);
      assertEquals(second.store.get("services", NS, "kept")?.spec?.clusterIP, "198.19.0.7");
      assertEquals(second.status().state, "degraded");
      assert(second.details().snapshot);
      await waitFor(() => second.details().lastError, "a connection error reported");
      assert(
        lines.some((l) => l.msg === "serving from the cluster snapshot until the source syncs"),
      );

      // The metaserver comes back with changes: the store converges.
      await using ms2 = await TestMetaServer.start({
        port,
        initialResourceVersion: ms.resourceVersion + 100,
        objects: [svc("kept", "198.19.0.8"), svc("new")],
      });
      await waitFor(
        () => second.status().state === "ready",
        "ready after the metaserver returns",
        5000,
      );
      assertEquals(second.store.get("services", NS, "kept")?.spec?.clusterIP, "198.19.0.8");
      assert(second.store.get("services", NS, "new"));
      assertEquals(second.store.get("services", NS, "gone"), undefined);
      await ms2.stop();
    } finally {
      await second.stop();
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("ClusterState moves a corrupt snapshot aside and starts from the source", async () => {
  const stateDir = await Deno.makeTempDir();
  await using ms = await TestMetaServer.start({ objects: [svc("a")] });
  const { logger, lines } = memoryLogger();
  const cs = new ClusterState(
    { logger },
    options({ metaServer: ms.url, stateDir, httpClient: "fetch" }),
  );
  try {
    await Deno.writeTextFile(
      join(stateDir, SNAPSHOT_FILE),
      '{"format":"edgemesh.cluster-snapshot","vers',
    );
    await cs.start(new AbortController().signal);
    assertEquals(cs.status().state, "ready");
    assert(cs.store.get("services", NS, "a"));
    const names = (await Array.fromAsync(Deno.readDir(stateDir))).map((e) => e.name);
    assert(names.some((n) => n.startsWith(`${SNAPSHOT_FILE}.corrupt-`)), names.join(","));
    assert(lines.some((l) => l.level === "error" && String(l.msg).includes("moved aside")));
    await cs.flushSnapshot();
    assert((await Deno.readTextFile(join(stateDir, SNAPSHOT_FILE))).includes('"a"'));
  } finally {
    await cs.stop();
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("ClusterState without a snapshot starts degraded after initialSyncTimeoutMs when the metaserver is away", async () => {
  const ms = await TestMetaServer.start();
  const url = ms.url;
  await ms.stop();
  const cs = new ClusterState(
    { logger: memoryLogger().logger },
    options({ metaServer: url, initialSyncTimeoutMs: 300 }),
  );
  try {
    await cs.start(new AbortController().signal);
    assertEquals(cs.status().state, "degraded");
    assertEquals(cs.details().synced, false);
  } finally {
    await cs.stop();
  }
});

Deno.test("ClusterState reads a manifest folder and follows its changes", async () => {
  const dir = await Deno.makeTempDir();
  const cs = new ClusterState(
    { logger: memoryLogger().logger },
    options({ source: "manifests", manifestDir: dir, manifestDebounceMs: 30 }),
  );
  try {
    await Deno.writeTextFile(
      join(dir, "a.yaml"),
      "apiVersion: v1\nkind: Service\nmetadata: {name: m, namespace: demo}\nspec: {clusterIP: 198.19.0.9}\n",
    );
    await cs.start(new AbortController().signal);
    assertEquals(cs.status().state, "ready");
    assert(cs.store.get("services", "demo", "m"));
    await Deno.writeTextFile(
      join(dir, "b.yaml"),
      "apiVersion: v1\nkind: Node\nmetadata: {name: n2}\n",
    );
    await waitFor(() => cs.store.get("nodes", undefined, "n2"), "node from a new manifest");
  } finally {
    await cs.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ClusterState.configMaps reports the agent and health ConfigMaps and their changes", async () => {
  await using ms = await TestMetaServer.start({
    objects: [{
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { namespace: "kubeedge", name: "edgemesh-agent-cfg" },
      data: { "edgemesh-agent.yaml": "modules: {}\n" },
    }],
  });
  const cs = new ClusterState({ logger: memoryLogger().logger }, options({ metaServer: ms.url }));
  try {
    await cs.start(new AbortController().signal);
    assertEquals(cs.configMaps.agentConfig(), "modules: {}\n");
    assertEquals(cs.configMaps.healthConfig(), undefined);
    const agent: (string | undefined)[] = [];
    const health: (HealthConfig | undefined)[] = [];
    cs.configMaps.on("agent-config", (t) => agent.push(t));
    cs.configMaps.on("health-config", (h) => health.push(h));
    ms.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { namespace: "kube-system", name: "edge-health-config" },
      data: { "unit-internal-check": "true", "check-units": "u1, u2" },
    });
    ms.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { namespace: "kubeedge", name: "edgemesh-agent-cfg" },
      data: { "edgemesh-agent.yaml": "modules: {edgeDNS: {enable: true}}\n" },
    });
    await waitFor(() => agent.length === 1 && health.length === 1, "both events");
    assertEquals(agent, ["modules: {edgeDNS: {enable: true}}\n"]);
    assertEquals([health[0]?.unitInternalCheck, health[0]?.checkUnits], [true, ["u1", "u2"]]);
    ms.delete({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { namespace: "kubeedge", name: "edgemesh-agent-cfg" },
    });
    await waitFor(() => agent.length === 2, "deletion event");
    assertEquals(agent[1], undefined);
  } finally {
    await cs.stop();
  }
});

Deno.test("ClusterState in kubeconfig mode uses the kubeconfig's credentials and the master override", async () => {
  await using ms = await TestMetaServer.start({ objects: [svc("via-kubeconfig")] });
  const dir = await Deno.makeTempDir();
  const kubeConfig = join(dir, "kubeconfig");
  await Deno.writeTextFile(
    kubeConfig,
    `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "http://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: token-${Deno.pid}}
contexts:
- name: c
  context: {cluster: test, user: u}
current-context: c
`,
  );
  const cs = new ClusterState(
    { logger: memoryLogger().logger },
    options({ source: "kubeconfig", kubeConfig, master: ms.url }),
  );
  try {
    await cs.start(new AbortController().signal);
    assertEquals(cs.status().state, "ready");
    assert(cs.store.get("services", NS, "via-kubeconfig"));
    assertEquals(ms.lastAuthorization, `Bearer token-${Deno.pid}`);
    assertEquals(cs.details().target, ms.url);
  } finally {
    await cs.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ClusterState can be stopped and started again (hot reload)", async () => {
  await using ms = await TestMetaServer.start({ objects: [svc("a")] });
  const cs = new ClusterState(
    { logger: memoryLogger().logger },
    options({ metaServer: ms.url, httpClient: "fetch" }),
  );
  try {
    await cs.stop(); // safe before start
    await cs.start(new AbortController().signal);
    await cs.stop();
    await cs.stop(); // idempotent
    ms.apply(svc("b"));
    await cs.start(new AbortController().signal);
    assertEquals(cs.status().state, "ready");
    assert(cs.store.get("services", NS, "b"));
  } finally {
    await cs.stop();
  }
});
