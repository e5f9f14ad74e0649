/**
 * Five Health agents on 127.0.0.1 (each on its own port 0), one shared cluster store, a fake
 * API writer that records patches and applies them to the store:
 *
 *   n1 ─┬─ n2 ─┬─ n3 ─┬─ n4 ─┬─ n5      (one group "*": unit checking off)
 *       └──────┴──────┴──────┘          probe + exchange every 200 ms
 */
import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
} from "node:assert/strict";
import { ClusterStore, type Node } from "../kube/mod.ts";
import { nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { AdmissionReviewer } from "./admission.ts";
import {
  EDGE_HEALTH_ANNOTATION,
  NODE_UNHEALTH_ANNOTATION,
  parseEdgeHealth,
} from "./annotations.ts";
import { HealthStartError } from "./errors.ts";
import { Health } from "./health.ts";
import { generateIdentity } from "./identity.ts";
import { groupHash } from "./groups.ts";
import { FAIL, OK } from "./vote.ts";
import { encodeDigestBody, encodeExchange, TYPE_EXCHANGE, withSignature } from "./wire.ts";

const PERIOD = 200;

function node(
  name: string,
  ready: "True" | "Unknown" = "True",
  labels: Record<string, string> = {},
): Node {
  return {
    metadata: { name, labels, annotations: {}, resourceVersion: "1" },
    spec: { taints: [] },
    status: {
      addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
      conditions: [{ type: "Ready", status: ready }],
    },
  };
}

interface Patch {
  writer: string;
  node: string;
  annotations: Record<string, string | null>;
  /** Wall clock (ms) when the PATCH was sent. */
  at: number;
}

function fakeWriter(store: ClusterStore, writer: string, patches: Patch[]) {
  return {
    patchNodeAnnotations(name: string, annotations: Record<string, string | null>): Promise<void> {
      patches.push({ writer, node: name, annotations, at: Date.now() });
      const n = store.get("nodes", undefined, name);
      if (!n) return Promise.reject(new Error(`node ${name} not found`));
      const merged: Record<string, string> = { ...n.metadata.annotations };
      for (const [k, v] of Object.entries(annotations)) {
        v === null ? delete merged[k] : (merged[k] = v);
      }
      const rv = String(Number(n.metadata.resourceVersion ?? "0") + 1);
      store.upsert("nodes", {
        ...n,
        metadata: { ...n.metadata, annotations: merged, resourceVersion: rv },
      });
      return Promise.resolve();
    },
  };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

async function cluster(
  names: string[],
  store: ClusterStore,
  patches: Patch[],
  extra: { annotationRefreshMs?: number } = {},
) {
  const ports = new Map<string, number>();
  const agents = new Map<string, Health>();
  const registries = new Map<string, Registry>();
  const ctl = new AbortController();
  for (const name of names) {
    registries.set(name, new Registry());
    const h = new Health({
      logger: nullLogger(),
      metrics: registries.get(name)!,
      store,
      identity: await generateIdentity(),
      writer: fakeWriter(store, name, patches),
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
      ...extra,
    });
    agents.set(name, h);
  }
  for (const [name, h] of agents) {
    await h.start(ctl.signal);
    ports.set(name, h.port);
  }
  return {
    agents,
    registries,
    ports,
    stopAll: () => Promise.all([...agents.values()].map((h) => h.stop())),
  };
}

const annotationOf = (store: ClusterStore, n: string) =>
  parseEdgeHealth(store.get("nodes", undefined, n)?.metadata.annotations?.[EDGE_HEALTH_ANNOTATION]);

Deno.test("Health: five agents vote a stopped agent unhealthy within 3 probe periods, one writer annotates", async () => {
  const names = ["n1", "n2", "n3", "n4", "n5"];
  const store = new ClusterStore();
  for (const n of names) store.upsert("nodes", node(n));
  const patches: Patch[] = [];
  const { agents, stopAll } = await cluster(names, store, patches);
  try {
    await waitFor(
      "every agent to see 5 healthy nodes",
      () => [...agents.values()].every((h) => names.every((n) => h.verdict(n) === "healthy")),
      5_000,
    );
    await waitFor(
      "all nodes annotated healthy",
      () => names.every((n) => annotationOf(store, n)?.state === "healthy"),
      3_000,
    );
    assertEquals(new Set(patches.map((p) => p.writer)), new Set(["n1"]));
    const st = agents.get("n2")!.status();
    assertEquals([st.state, st.group, st.writer, st.members.length], ["ready", "*", "n1", 5]);
    assertEquals(st.members.find((m) => m.node === "n4")!.effect, "normal");

    // n3's cloud Ready turns Unknown while its agent lives: still healthy, effect "keep".
    const n3 = store.get("nodes", undefined, "n3")!;
    store.upsert("nodes", {
      ...n3,
      metadata: { ...n3.metadata, resourceVersion: "100" },
      spec: { taints: [{ key: "node.kubernetes.io/unreachable", effect: "NoExecute" }] },
      status: { ...n3.status, conditions: [{ type: "Ready", status: "Unknown" }] },
    });
    await waitFor(
      "n3 effect keep",
      () => agents.get("n4")!.status().members.find((m) => m.node === "n3")?.effect === "keep",
      2_000,
    );
    const n3Patches = patches.filter((p) => p.node === "n3");
    assertEquals(new Set(n3Patches.map((p) => p.writer)), new Set(["n1"]));
    assertEquals(annotationOf(store, "n3")?.state, "healthy");
    assertEquals(annotationOf(store, "n3")?.members, 5);
    // The webhook, reading the same store, strips n3's unreachable taint.
    const reviewer = new AdmissionReviewer(
      { store, logger: nullLogger(), metrics: new Registry() },
      {},
    );
    const review = reviewer.review({
      request: {
        uid: "u1",
        operation: "UPDATE",
        resource: { resource: "nodes" },
        object: store.get("nodes", undefined, "n3"),
      },
    });
    assertEquals(JSON.parse(atob(review.response.patch!)), [{
      op: "remove",
      path: "/spec/taints/0",
    }]);

    // Stop n5: the other four vote it unhealthy within three probe periods.
    const events: [string, string][] = [];
    const unsubscribe = agents.get("n2")!.onChange((n, v) => events.push([n, v]));
    const stoppedAt = performance.now();
    await agents.get("n5")!.stop();
    const others = names.filter((n) => n !== "n5").map((n) => agents.get(n)!);
    await waitFor(
      "n5 voted unhealthy",
      () => others.every((h) => h.verdict("n5") === "unhealthy"),
      3 * PERIOD,
    );
    const elapsed = performance.now() - stoppedAt;
    unsubscribe();
    assertEquals(events, [["n5", "unhealthy"]]);
    assert(elapsed <= 3 * PERIOD, `took ${elapsed} ms`);
    console.log(`n5 voted unhealthy ${Math.round(elapsed)} ms after it stopped`);
    await waitFor(
      "n5 annotated unhealthy",
      () => annotationOf(store, "n5")?.state === "unhealthy",
      2_000,
    );
    assertEquals(
      store.get("nodes", undefined, "n5")!.metadata.annotations?.[NODE_UNHEALTH_ANNOTATION],
      "yes",
    );
    assertEquals(new Set(patches.map((p) => p.writer)), new Set(["n1"]));

    // Stop the writer n1: n2 takes over and annotates n1 unhealthy.
    await agents.get("n1")!.stop();
    await waitFor(
      "n1 annotated unhealthy by n2",
      () => annotationOf(store, "n1")?.state === "unhealthy",
      3_000,
    );
    assertEquals(
      patches.filter((p) => p.node === "n1" && p.annotations[NODE_UNHEALTH_ANNOTATION] === "yes")
        .map((p) => p.writer),
      ["n2"],
    );
  } finally {
    await stopAll();
  }
});

Deno.test("Health: the live writer keeps refreshing a healthy node's annotation; once every agent stopped, the webhook stops protecting it after the max age", async () => {
  const REFRESH = 2 * PERIOD;
  const MAX_AGE = 4 * REFRESH;
  const names = ["r1", "r2", "r3"];
  const store = new ClusterStore();
  // The cloud lost r2 (Ready Unknown, tainted) while its agent lives.
  const r2 = node("r2", "Unknown");
  r2.spec = { taints: [{ key: "node.kubernetes.io/unreachable", effect: "NoExecute" }] };
  for (const n of [node("r1"), r2, node("r3")]) store.upsert("nodes", n);
  const patches: Patch[] = [];
  const { stopAll } = await cluster(names, store, patches, { annotationRefreshMs: REFRESH });
  let cloudNow = Date.now();
  const webhook = new AdmissionReviewer(
    { store, logger: nullLogger(), metrics: new Registry(), clock: { now: () => cloudNow } },
    { maxAnnotationAgeMs: MAX_AGE },
  );
  const review = () =>
    webhook.review({
      request: {
        uid: "u-r2",
        operation: "UPDATE",
        resource: { resource: "nodes" },
        object: store.get("nodes", undefined, "r2"),
      },
    }).response;
  const r2Writes = () => patches.filter((p) => p.node === "r2");
  try {
    // Run past the max age (5 refreshes): the protection holds all along.
    let seen = 0;
    await waitFor("5 refreshes of r2", () => {
      if (r2Writes().length > seen) {
        seen = r2Writes().length;
        cloudNow = Date.now();
        const r = review();
        assert(
          r.patch !== undefined && r.warnings === undefined,
          JSON.stringify([r, store.get("nodes", undefined, "r2")]),
        );
      }
      return seen >= 6;
    }, 20 * REFRESH);
    const ats = r2Writes().map((p) => p.at);
    const gaps = ats.slice(1).map((t, i) => t - ats[i]);
    assert(gaps.every((g) => g >= REFRESH), `refreshed more often than ${REFRESH} ms: ${gaps}`);
    // Between two refreshes the annotation never got older than the max age.
    assert(gaps.every((g) => g < MAX_AGE), `a refresh came too late: ${gaps}`);
    assertEquals(new Set(r2Writes().map((p) => p.writer)), new Set(["r1"]));
    assertEquals(annotationOf(store, "r2")?.state, "healthy");
  } finally {
    await stopAll();
  }
  // Every agent of the unit stopped (power loss): nobody refreshes any more.
  const last = Date.parse(annotationOf(store, "r2")!.refreshedAt!);
  // refreshedAt is stamped when the writer's pass starts, a moment before the PATCH.
  const lastPatch = Math.max(...r2Writes().map((p) => p.at));
  assert(last <= lastPatch && lastPatch - last < PERIOD, `${last} vs ${lastPatch}`);
  cloudNow = last + MAX_AGE;
  assert(review().patch !== undefined, "still within the max age");
  cloudNow = last + MAX_AGE + 1;
  const r = review();
  assertEquals(r.patch, undefined);
  assert(r.warnings?.[0].includes(`is stale: refreshedAt ${new Date(last).toISOString()}`));
});

Deno.test("Health: regrouping by NodeUnit label and ConfigMap takes effect live", async () => {
  const names = ["u1", "u2", "u3"];
  const store = new ClusterStore();
  store.upsert("nodes", node("u1", "True", { east: "nodeunits.superedge.io" }));
  store.upsert("nodes", node("u2", "True", { east: "nodeunits.superedge.io" }));
  store.upsert("nodes", node("u3", "True", { west: "nodeunits.superedge.io" }));
  const patches: Patch[] = [];
  const { agents, stopAll } = await cluster(names, store, patches);
  try {
    await waitFor("group * healthy", () => agents.get("u3")!.verdict("u1") === "healthy", 3_000);
    assertEquals(agents.get("u1")!.status().group, "*");
    store.upsert("configmaps", {
      metadata: { name: "edge-health-config", namespace: "kube-system", resourceVersion: "1" },
      data: { "unit-internal-check": "true", "check-units": "east" },
    });
    await waitFor("regrouped", () => agents.get("u1")!.status().group === "east", 2_000);
    assertEquals(agents.get("u1")!.status().members.map((m) => m.node), ["u1", "u2"]);
    assertEquals(agents.get("u3")!.status().group, "");
    assertEquals(agents.get("u3")!.verdict("u1"), "unknown");
    // Fresh votes of the new two-member group (both members must agree).
    await waitFor("east healthy by fresh votes", () => {
      const m = agents.get("u2")!.status().members.find((x) => x.node === "u1");
      return m?.verdict === "healthy" && m.healthy === 2;
    }, 3_000);
  } finally {
    await stopAll();
  }
});

Deno.test("Health: a forged digest posted to a live agent is rejected and changes nothing", async () => {
  const names = ["f1", "f2", "f3"];
  const store = new ClusterStore();
  for (const n of names) store.upsert("nodes", node(n));
  const { agents, registries, ports, stopAll } = await cluster(names, store, []);
  try {
    const f1 = agents.get("f1")!;
    await waitFor(
      "f1 sees all healthy",
      () => names.every((n) => f1.verdict(n) === "healthy"),
      3_000,
    );
    const attacker = await generateIdentity();
    const hash = await groupHash({ name: "*", members: names });
    const post = async (from: string) => {
      const ts = Date.now();
      const body = encodeDigestBody({
        from,
        group: "*",
        seq: ts * 1000 + 999_999,
        ts,
        groupHash: hash,
        states: Uint8Array.of(OK, FAIL, FAIL),
        observedAt: Float64Array.of(ts, ts, ts),
        publicKey: attacker.publicKey,
      });
      const frame = encodeExchange({
        type: TYPE_EXCHANGE,
        groupHash: hash,
        summary: new Float64Array(3),
        digests: [withSignature(body, await attacker.sign(body))],
      });
      const res = await fetch(`http://127.0.0.1:${ports.get("f1")}/v1/exchange`, {
        method: "POST",
        body: frame as BodyInit,
      });
      await res.body?.cancel();
      return res.status;
    };
    const rejected = registries.get("f1")!.counter("edgemesh_health_digests_total", "", ["result"]);
    assertEquals(await post("f2"), 200);
    assertEquals(await post("f3"), 200);
    assertEquals(await post("mallory"), 200);
    assertEquals(rejected.get({ result: "key-mismatch" }), 2);
    assertEquals(rejected.get({ result: "unknown-sender" }), 1);
    assertEquals(names.map((n) => f1.verdict(n)), ["healthy", "healthy", "healthy"]);
    assertEquals(f1.status().members.every((m) => m.unhealthy === 0), true);
  } finally {
    await stopAll();
  }
});

Deno.test("Health.start() rejects with HealthStartError when the port is taken; stop() is idempotent", async () => {
  const store = new ClusterStore();
  store.upsert("nodes", node("p1"));
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const h = new Health({
      logger: nullLogger(),
      metrics: new Registry(),
      store,
      identity: await generateIdentity(),
      writer: fakeWriter(store, "p1", []),
    }, { nodeName: "p1", listenAddress: "127.0.0.1", listenPort: listener.addr.port });
    await h.stop();
    await assertRejects(h.start(new AbortController().signal), HealthStartError);
    assertEquals(h.status().state, "failed");
    await h.stop();
    await h.stop();
  } finally {
    listener.close();
  }
});
