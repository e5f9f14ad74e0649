/**
 * The annotation writer's refresh, on a fake clock: a shared ClusterStore plays the API (a
 * fake writer applies merge patches to it), and the admission webhook reads the same store.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ClusterStore, type Node } from "../kube/mod.ts";
import { LogRateLimiter, nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { AdmissionReviewer } from "./admission.ts";
import { EDGE_HEALTH_ANNOTATION, edgeHealthOf, parseEdgeHealth } from "./annotations.ts";
import { healthMetrics } from "./metrics.ts";
import { AnnotationPublisher } from "./publisher.ts";
import type { MemberDecision } from "./vote.ts";

const SEC = 1_000;
const MIN = 60 * SEC;
const T0 = Date.parse("2026-11-22T02:00:00Z");
const GROUP = { name: "*", members: ["e1", "e2", "e3"] };

function edgeNode(name: string, annotation?: object): Node {
  return {
    metadata: {
      name,
      resourceVersion: "1",
      annotations: annotation ? { [EDGE_HEALTH_ANNOTATION]: JSON.stringify(annotation) } : {},
    },
    // The cloud lost e2: Ready Unknown, the node controller tainted it.
    spec: name === "e2"
      ? { taints: [{ key: "node.kubernetes.io/unreachable", effect: "NoExecute" }] }
      : {},
    status: { conditions: [{ type: "Ready", status: name === "e2" ? "Unknown" : "True" }] },
  };
}

/** A fake clock, a store, a writer that records (and, unless `lagging`, applies) patches. */
function setup(opts: { lagging?: boolean; annotations?: Record<string, object> } = {}) {
  const clock = { t: T0 };
  const store = new ClusterStore();
  for (const n of GROUP.members) store.upsert("nodes", edgeNode(n, opts.annotations?.[n]));
  const patches: { node: string; at: number; value: string | null }[] = [];
  const writer = {
    patchNodeAnnotations(node: string, annotations: Record<string, string | null>) {
      patches.push({ node, at: clock.t, value: annotations[EDGE_HEALTH_ANNOTATION] });
      if (opts.lagging) return Promise.resolve();
      const n = store.get("nodes", undefined, node)!;
      const merged: Record<string, string> = { ...n.metadata.annotations };
      for (const [k, v] of Object.entries(annotations)) {
        v === null ? delete merged[k] : (merged[k] = v);
      }
      store.upsert("nodes", {
        ...n,
        metadata: {
          ...n.metadata,
          annotations: merged,
          resourceVersion: String(Number(n.metadata.resourceVersion) + 1),
        },
      });
      return Promise.resolve();
    },
  };
  const now = () => clock.t;
  const publisher = new AnnotationPublisher({
    writer,
    store,
    metrics: healthMetrics(new Registry()),
    log: nullLogger(),
    limiter: new LogRateLimiter(5, 10_000, now),
    now,
  }, { voteTimeoutMs: 30 * SEC, annotationRefreshMs: MIN });
  const decisions = new Map<string, MemberDecision>(
    GROUP.members.map((node) => [node, {
      node,
      verdict: "healthy",
      healthy: 3,
      unhealthy: 0,
      majority: "healthy",
      decidedAt: T0 - 10 * MIN,
    }]),
  );
  const signal = new AbortController().signal;
  /** One vote of the writer at the current fake time, its writes finished. */
  const vote = async () => {
    publisher.publish(GROUP, decisions, signal);
    await publisher.drain();
  };
  const webhook = new AdmissionReviewer(
    { store, logger: nullLogger(), metrics: new Registry(), clock: { now } },
    {},
  );
  /** Does the webhook strip e2's unreachable taint now? */
  const strips = () => {
    const r = webhook.review({
      request: {
        uid: "u",
        operation: "UPDATE",
        resource: { resource: "nodes" },
        object: store.get("nodes", undefined, "e2"),
      },
    }).response;
    return { strips: r.patch !== undefined, warnings: r.warnings };
  };
  return { clock, store, patches, vote, strips };
}

const intervals = (ats: number[]) => ats.slice(1).map((t, i) => t - ats[i]);

Deno.test("AnnotationPublisher refreshes an unchanged decision once per annotationRefreshMs, never more often", async () => {
  const { clock, patches, vote } = setup();
  // Votes every 10 s for 10 min, as the rounds of a 10 s probe interval would.
  for (let t = 0; t <= 10 * MIN; t += 10 * SEC) {
    clock.t = T0 + t;
    await vote();
  }
  for (const node of GROUP.members) {
    const ats = patches.filter((p) => p.node === node).map((p) => p.at - T0);
    // The first write at 0, then one refresh a minute: 11 PATCHes in 10 min, not 61.
    assertEquals(ats, Array.from({ length: 11 }, (_, i) => i * MIN), node);
  }
  const last = parseEdgeHealth(patches.at(-1)!.value!)!;
  assertEquals(last.refreshedAt, new Date(T0 + 10 * MIN).toISOString());
  // The decision did not change: decidedAt stays the time it was first decided.
  assertEquals(last.decidedAt, new Date(T0 - 10 * MIN).toISOString());
});

Deno.test("AnnotationPublisher does not refresh more often when votes are frequent or the store lags", async () => {
  // Votes every second (gossip-triggered decides) against a store that never sees the writes.
  const { clock, patches, vote } = setup({
    lagging: true,
    annotations: Object.fromEntries(GROUP.members.map((n) => [n, {
      state: "healthy",
      healthy: 3,
      unhealthy: 0,
      members: 3,
      group: "*",
      decidedAt: new Date(T0 - 10 * MIN).toISOString(),
      refreshedAt: new Date(T0 - 10 * SEC).toISOString(),
    }])),
  });
  for (let t = 0; t <= 5 * MIN; t += SEC) {
    clock.t = T0 + t;
    await vote();
  }
  for (const node of GROUP.members) {
    const ats = patches.filter((p) => p.node === node).map((p) => p.at);
    // Due 60 s after the stored refreshedAt (T0 - 10 s), then every 60 s after our own write.
    assertEquals(ats.map((t) => t - T0), [50 * SEC, 110 * SEC, 170 * SEC, 230 * SEC, 290 * SEC]);
    assert(intervals(ats).every((d) => d >= MIN));
  }
});

Deno.test("AnnotationPublisher refreshes an older agent's annotation (decidedAt only) when it is due, keeping decidedAt", async () => {
  const old = (decidedAgo: number) => ({
    state: "healthy",
    healthy: 2,
    unhealthy: 1,
    members: 3,
    group: "*",
    decidedAt: new Date(T0 - decidedAgo).toISOString(),
  });
  const { clock, patches, vote, store } = setup({
    annotations: { e1: old(2 * MIN), e2: old(10 * SEC), e3: old(59 * SEC) },
  });
  await vote();
  assertEquals(patches.map((p) => p.node), ["e1"]);
  clock.t = T0 + SEC;
  await vote();
  assertEquals(patches.map((p) => p.node), ["e1", "e3"]);
  clock.t = T0 + 50 * SEC;
  await vote();
  assertEquals(patches.map((p) => p.node), ["e1", "e3", "e2"]);
  const e1 = edgeHealthOf(store.get("nodes", undefined, "e1"))!;
  assertEquals([e1.decidedAt, e1.refreshedAt, e1.healthy], [
    new Date(T0 - 2 * MIN).toISOString(),
    new Date(T0).toISOString(),
    3,
  ]);
});

Deno.test("a live writer keeps a healthy node protected; once every agent stopped, eviction resumes after the max age", async () => {
  const { clock, vote, strips, patches } = setup();
  // 30 minutes of a live group (votes every 10 s): e2 keeps its protection throughout,
  // although it is far older than the webhook's 5 min max age.
  for (let t = 0; t <= 30 * MIN; t += 10 * SEC) {
    clock.t = T0 + t;
    await vote();
    assertEquals(strips(), { strips: true, warnings: undefined }, `at ${t / SEC} s`);
  }
  const lastRefresh = Math.max(...patches.filter((p) => p.node === "e2").map((p) => p.at));
  assertEquals(lastRefresh, T0 + 30 * MIN);
  // The whole NodeUnit loses power: no agent votes or writes any more.
  clock.t = lastRefresh + 5 * MIN;
  assertEquals(strips(), { strips: true, warnings: undefined });
  clock.t = lastRefresh + 5 * MIN + SEC;
  const after = strips();
  assertEquals(after.strips, false);
  assertEquals(after.warnings, [
    'edgemesh: node "e2": annotation edgemesh.kubeedge.io/edge-health ("healthy") is stale: ' +
    `refreshedAt ${new Date(lastRefresh).toISOString()} is 5m01s old (max 5m00s); ` +
    "treated as absent, standard eviction applies",
  ]);
  // A writer that comes back refreshes it, and the protection returns.
  await vote();
  assertEquals(strips(), { strips: true, warnings: undefined });
});
