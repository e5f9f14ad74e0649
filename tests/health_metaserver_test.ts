/**
 * Five health agents on 127.0.0.1 against the test metaserver: each agent has its own store
 * fed by list/watch (nodes, configmaps) and writes annotations with a merge PATCH, as main.ts
 * wires them.
 *
 *   TestMetaServer ── watch ──> store(n1) … store(n5)
 *        ^                         │
 *        └──── PATCH annotations ──┘ (only the group's writer)
 *   n1 … n5: probe + exchange each other every 200 ms on their own port
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { generateIdentity, Health, parseEdgeHealth } from "../mod/health/mod.ts";
import { ApiSource } from "../mod/kube/api_source.ts";
import { ClusterStore } from "../mod/kube/mod.ts";
import { FetchTransport } from "../mod/kube/transport_fetch.ts";
import { nullLogger } from "../mod/log/mod.ts";
import { Registry } from "../mod/metrics/mod.ts";
import { TestMetaServer } from "./support/metaserver.ts";

const PERIOD = 200;
const NAMES = ["n1", "n2", "n3", "n4", "n5"];

const nodeObject = (name: string) => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name, annotations: {} as Record<string, string> },
  status: {
    addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
    conditions: [{ type: "Ready", status: "True" }],
  },
});

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("health with the test metaserver: one writer annotates; a stopped agent is voted unhealthy", async () => {
  await using ms = await TestMetaServer.start({ objects: NAMES.map(nodeObject) });
  const ports = new Map<string, number>();
  const agents = new Map<string, Health>();
  const sources: ApiSource[] = [];
  const writes: { writer: string; node: string }[] = [];
  const ctl = new AbortController();
  try {
    for (const name of NAMES) {
      const store = new ClusterStore();
      const source = new ApiSource(
        { transport: new FetchTransport(ms.url), store, logger: nullLogger() },
        { source: "metaserver", kinds: ["nodes", "configmaps"] },
      );
      sources.push(source);
      source.start(ctl.signal);
      await source.synced();
      const h = new Health({
        logger: nullLogger(),
        metrics: new Registry(),
        store,
        identity: await generateIdentity(),
        writer: {
          async patchNodeAnnotations(node, annotations) {
            writes.push({ writer: name, node });
            const res = await fetch(`${ms.url}/api/v1/nodes/${node}`, {
              method: "PATCH",
              headers: { "content-type": "application/merge-patch+json" },
              body: JSON.stringify({ metadata: { annotations } }),
            });
            await res.body?.cancel();
            if (!res.ok) throw new Error(`PATCH node ${node}: HTTP ${res.status}`);
          },
        },
        resolveAddress: (
          n,
        ) => (ports.has(n) ? { hostname: "127.0.0.1", port: ports.get(n)! } : undefined),
      }, {
        nodeName: name,
        listenAddress: "127.0.0.1",
        listenPort: 0,
        probeIntervalMs: PERIOD,
        probeTimeoutMs: 150,
        probeRetries: 0,
        voteTimeoutMs: 3 * PERIOD,
      });
      agents.set(name, h);
    }
    for (const [name, h] of agents) {
      await h.start(ctl.signal);
      ports.set(name, h.port);
    }
    const annotation = (n: string) =>
      parseEdgeHealth(
        ms.get("v1", "Node", undefined, n)?.metadata.annotations
          ?.["edgemesh.kubeedge.io/edge-health"],
      );
    await waitFor(
      "all nodes annotated healthy",
      () => NAMES.every((n) => annotation(n)?.state === "healthy"),
      5_000,
    );

    // The cloud loses n3 (Ready Unknown) while its agent lives: it stays annotated healthy.
    const n3 = ms.get("v1", "Node", undefined, "n3")!;
    n3.status.conditions = [{ type: "Ready", status: "Unknown" }];
    ms.update(n3);
    await waitFor(
      "n3 effect keep on n2",
      () => agents.get("n2")!.status().members.find((m) => m.node === "n3")?.effect === "keep",
      3_000,
    );
    assertEquals(annotation("n3")?.state, "healthy");

    const stoppedAt = performance.now();
    await agents.get("n5")!.stop();
    const others = NAMES.slice(0, 4).map((n) => agents.get(n)!);
    await waitFor(
      "n5 voted unhealthy",
      () => others.every((h) => h.verdict("n5") === "unhealthy"),
      3 * PERIOD,
    );
    assert(performance.now() - stoppedAt <= 3 * PERIOD);
    await waitFor("n5 annotated unhealthy", () => annotation("n5")?.state === "unhealthy", 3_000);
    assertEquals(ms.get("v1", "Node", undefined, "n5")!.metadata.annotations?.nodeunhealth, "yes");
    assertEquals(new Set(writes.map((w) => w.writer)), new Set(["n1"]));
  } finally {
    await Promise.all([...agents.values()].map((h) => h.stop()));
    ctl.abort();
    await Promise.all(sources.map((s) => s.stop()));
  }
});
