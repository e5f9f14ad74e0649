import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { ClusterStore, type Node } from "../kube/mod.ts";
import { nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { AdmissionReviewer, type AdmissionReviewOut, type JsonPatchOp } from "./admission.ts";
import { admissionHandler, serveAdmission } from "./admission_server.ts";
import { AdmissionConfigError } from "./errors.ts";
import { TestPki } from "../../tests/support/pki.ts";

const fixture = (name: string) =>
  JSON.parse(Deno.readTextFileSync(new URL(`./testdata/${name}`, import.meta.url)));

/** Minimal RFC 6902 (add, remove, replace) to check that patches apply where they should. */
function applyPatch<T>(doc: T, ops: JsonPatchOp[]): T {
  const out = structuredClone(doc) as unknown;
  for (const op of ops) {
    const parts = op.path.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = parts.pop()!;
    let parent = out as Record<string, unknown> | unknown[];
    for (const p of parts) parent = (parent as Record<string, unknown>)[p] as typeof parent;
    if (parent === undefined) throw new Error(`path ${op.path} does not exist`);
    if (Array.isArray(parent)) {
      const i = last === "-" ? parent.length : Number(last);
      if (op.op === "add") parent.splice(i, 0, op.value);
      else if (i >= parent.length) throw new Error(`index ${op.path} out of range`);
      else if (op.op === "remove") parent.splice(i, 1);
      else if (op.op === "replace") parent[i] = op.value;
    } else {
      if (op.op !== "add" && !(last in parent)) throw new Error(`path ${op.path} does not exist`);
      if (op.op === "remove") delete parent[last];
      else if (op.op === "add" || op.op === "replace") parent[last] = op.value;
    }
  }
  return out as T;
}

/** When the recorded fixtures were taken: 2 min after their annotations' decidedAt. */
const RECORDED_AT = Date.parse("2026-11-22T01:00:00Z");
const DECIDED_AT = Date.parse("2026-11-22T00:58:00Z");
const MIN = 60_000;

function clusterNode(
  name: string,
  ready: "True" | "Unknown",
  state?: "healthy" | "unhealthy",
  refreshedAt?: string,
): Node {
  const annotations: Record<string, string> = {};
  if (state) {
    annotations["edgemesh.kubeedge.io/edge-health"] = JSON.stringify({
      state,
      healthy: 4,
      unhealthy: 1,
      members: 5,
      group: "*",
      decidedAt: "2026-11-22T00:58:00Z",
      ...(refreshedAt ? { refreshedAt } : {}),
    });
  }
  return {
    metadata: { name, annotations },
    status: { conditions: [{ type: "Ready", status: ready }] },
  };
}

function reviewer(
  opts: {
    alwaysReachable?: boolean;
    unitCheck?: boolean;
    now?: number;
    maxAnnotationAgeMs?: number;
    metrics?: Registry;
  } = {},
) {
  const store = new ClusterStore();
  store.upsert("nodes", clusterNode("edge-1", "Unknown", "healthy"));
  store.upsert("nodes", clusterNode("edge-2", "Unknown", "unhealthy"));
  store.upsert("nodes", clusterNode("edge-3", "True", "healthy"));
  if (opts.unitCheck) {
    store.upsert("configmaps", {
      metadata: { name: "edge-health-config", namespace: "kube-system" },
      data: { "unit-internal-check": "true", "check-units": "east" },
    });
  }
  const now = opts.now ?? RECORDED_AT;
  return new AdmissionReviewer({
    store,
    logger: nullLogger(),
    metrics: opts.metrics ?? new Registry(),
    clock: { now: () => now },
  }, { alwaysReachable: opts.alwaysReachable, maxAnnotationAgeMs: opts.maxAnnotationAgeMs });
}

const patchOf = (r: AdmissionReviewOut): JsonPatchOp[] | undefined =>
  r.response.patch ? JSON.parse(atob(r.response.patch)) : undefined;

const taintsAfter = (name: string, alwaysReachable = false) => {
  const review = fixture(name);
  const r = reviewer({ alwaysReachable }).review(review);
  assertEquals(r.response.uid, review.request.uid);
  assertEquals(r.response.allowed, true);
  const p = patchOf(r);
  if (p) assertEquals(r.response.patchType, "JSONPatch");
  return (applyPatch(review.request.object, p ?? []) as Node).spec!.taints!.map((t) =>
    `${t.key}:${t.effect}`
  );
};

const NS = "node.kubernetes.io/unreachable:NoSchedule";
const NE = "node.kubernetes.io/unreachable:NoExecute";
const EDGE = "node-role.kubernetes.io/edge:NoSchedule";

Deno.test("webhook strips the unreachable NoExecute taint only when Ready is Unknown and the group voted healthy", () => {
  assertEquals(taintsAfter("review_node_unknown_voted_healthy.json"), [EDGE, NS]);
  assertEquals(taintsAfter("review_node_unknown_voted_unhealthy.json"), [NS, NE]);
  assertEquals(taintsAfter("review_node_unknown_no_vote.json"), [NS, NE]);
  assertEquals(taintsAfter("review_node_ready_true.json"), [NE]);
  assertEquals(taintsAfter("review_node_two_unreachable_noexecute.json"), [EDGE]);
});

Deno.test("webhook with alwaysReachable strips every unreachable NoExecute taint", () => {
  assertEquals(taintsAfter("review_node_unknown_voted_unhealthy.json", true), [NS]);
  assertEquals(taintsAfter("review_node_unknown_no_vote.json", true), [NS]);
  assertEquals(taintsAfter("review_node_ready_true.json", true), []);
});

Deno.test("webhook answers a node without conditions with a warning and no patch", () => {
  const r = reviewer().review(fixture("review_node_no_conditions.json"));
  assertEquals(r.response.allowed, true);
  assertEquals(r.response.patch, undefined);
  assert(r.response.warnings?.[0].includes("no Ready condition"));
});

Deno.test("webhook moves notReadyAddresses of kept nodes to addresses with correct indices", () => {
  const review = fixture("review_endpoints_several.json");
  const r = reviewer().review(review);
  const after = applyPatch(review.request.object, patchOf(r)!);
  const ips = (list?: { ip: string }[]) => list?.map((a) => a.ip);
  assertEquals(ips(after.subsets[0].addresses), ["10.244.1.7", "10.244.3.4", "10.244.3.5"]);
  assertEquals(ips(after.subsets[0].notReadyAddresses), ["10.244.4.9"]);
  assertEquals(ips(after.subsets[1].addresses), ["10.244.3.6"]);
  assertEquals(ips(after.subsets[1].notReadyAddresses), ["10.244.9.9"]);
  assertEquals(ips(after.subsets[2].addresses), ["10.244.3.8"]);
  assertEquals(after.subsets[2].notReadyAddresses, undefined);
  assertEquals(after.subsets[0].addresses[1].targetRef.name, "cart-7d9f-bbbb");
});

Deno.test("webhook sets EndpointSlice conditions.ready for endpoints on kept nodes only", () => {
  const review = fixture("review_endpointslice.json");
  const after = applyPatch(review.request.object, patchOf(reviewer().review(review))!);
  assertEquals(
    after.endpoints.map((e: { conditions?: { ready?: boolean } }) => e.conditions?.ready),
    [true, true, false, true, undefined],
  );
});

Deno.test("webhook answers malformed reviews with an allowed response and a warning", () => {
  const rv = reviewer();
  for (
    const input of [undefined, null, 42, "x", {}, { request: null }, {
      request: { operation: "UPDATE" },
    }]
  ) {
    const r = rv.review(input);
    assertEquals(r.response.allowed, true);
    assertEquals(r.response.patch, undefined);
    assert(r.response.warnings?.length === 1, JSON.stringify(input));
  }
  const noObject = rv.review({
    request: { uid: "u", operation: "UPDATE", resource: { resource: "nodes" } },
  });
  assertEquals([
    noObject.response.uid,
    noObject.response.allowed,
    noObject.response.warnings?.length,
  ], ["u", true, 1]);
  const weird = rv.review({
    request: {
      uid: "u2",
      operation: "UPDATE",
      resource: { resource: "endpoints" },
      object: { metadata: {}, subsets: [null, { notReadyAddresses: [null, 3, {}] }] },
    },
  });
  assertEquals([weird.response.allowed, weird.response.patch], [true, undefined]);
  const create = rv.review(fixture("review_node_create.json"));
  assertEquals([create.response.allowed, create.response.patch], [true, undefined]);
});

const nodeReview = (node: Node) => ({
  request: {
    uid: "u-stale",
    operation: "UPDATE",
    resource: { resource: "nodes" },
    object: {
      ...node,
      spec: { taints: [{ key: "node.kubernetes.io/unreachable", effect: "NoExecute" }] },
    },
  },
});

Deno.test("webhook treats a healthy annotation of an older agent (decidedAt only) older than the max age as absent", () => {
  const review = fixture("review_node_unknown_voted_healthy.json");
  const at = (now: number) => reviewer({ now }).review(review).response;
  const young = at(DECIDED_AT + 5 * MIN - 1_000);
  assertEquals(patchOf({ response: young } as AdmissionReviewOut), [{
    op: "remove",
    path: "/spec/taints/2",
  }]);
  assertEquals(young.warnings, undefined);
  const old = at(DECIDED_AT + 5 * MIN + 1_000);
  assertEquals([old.allowed, old.patch], [true, undefined]);
  assertEquals(old.warnings, [
    'edgemesh: node "edge-1": annotation edgemesh.kubeedge.io/edge-health ("healthy") is stale: ' +
    "decidedAt 2026-11-22T00:58:00.000Z is 5m01s old (max 5m00s); treated as absent, " +
    "standard eviction applies",
  ]);
  // An unhealthy or absent annotation is not worth a warning: nothing changes.
  const unhealthy = reviewer({ now: DECIDED_AT + 60 * MIN }).review(
    fixture("review_node_unknown_voted_unhealthy.json"),
  );
  assertEquals([unhealthy.response.patch, unhealthy.response.warnings], [undefined, undefined]);
});

Deno.test("webhook ages an annotation from refreshedAt, not decidedAt, and honours maxAnnotationAgeMs", () => {
  const node = clusterNode("edge-9", "Unknown", "healthy", "2026-11-22T01:30:00.000Z");
  const refreshed = Date.parse("2026-11-22T01:30:00Z");
  const strips = (now: number, maxAnnotationAgeMs?: number) => {
    const r = reviewer({ now, maxAnnotationAgeMs }).review(nodeReview(node));
    return { strips: r.response.patch !== undefined, warnings: r.response.warnings };
  };
  // decidedAt is 32 min old, but the group re-confirmed it 4 min ago.
  assertEquals(strips(refreshed + 4 * MIN), { strips: true, warnings: undefined });
  const stale = strips(refreshed + 6 * MIN);
  assertEquals(stale.strips, false);
  assert(stale.warnings?.[0].includes("refreshedAt 2026-11-22T01:30:00.000Z is 6m00s old"));
  // A longer max age (--annotation-max-age 10m) keeps protecting.
  assertEquals(strips(refreshed + 6 * MIN, 10 * MIN).strips, true);
  assertEquals(strips(refreshed + 11 * MIN, 10 * MIN).strips, false);
});

Deno.test("webhook distrusts annotations without a readable time or dated far in the future", () => {
  const cases: [string, string, boolean, string | undefined][] = [
    // [annotation value, label, strips, warning fragment]
    ["healthy", "plain value of the oldest agents", false, "has no decidedAt"],
    [
      JSON.stringify({ state: "healthy", decidedAt: "yesterday" }),
      "unreadable decidedAt",
      false,
      'has an unreadable decidedAt "yesterday"',
    ],
    [
      JSON.stringify({ state: "healthy", decidedAt: "2026-11-22T00:00:00Z", refreshedAt: "" }),
      "empty refreshedAt",
      false,
      "has no refreshedAt",
    ],
    [
      JSON.stringify({ state: "healthy", refreshedAt: "2026-11-22T01:10:00Z" }),
      "10 min ahead (writer clock skewed)",
      false,
      "10m00s in the future",
    ],
    [
      JSON.stringify({ state: "healthy", refreshedAt: "2026-11-22T01:01:00Z" }),
      "1 min ahead (small skew)",
      true,
      undefined,
    ],
  ];
  for (const [value, label, strips, fragment] of cases) {
    const node: Node = {
      metadata: { name: "edge-x", annotations: { "edgemesh.kubeedge.io/edge-health": value } },
      status: { conditions: [{ type: "Ready", status: "Unknown" }] },
    };
    const r = reviewer().review(nodeReview(node)).response;
    assertEquals(r.patch !== undefined, strips, label);
    if (fragment) assert(r.warnings?.[0].includes(fragment), `${label}: ${r.warnings}`);
    else assertEquals(r.warnings, undefined, label);
  }
});

Deno.test("webhook leaves endpoints of nodes with stale annotations not ready, one warning per node", () => {
  const metrics = new Registry();
  const rv = reviewer({ now: DECIDED_AT + 6 * MIN, metrics });
  for (const name of ["review_endpoints_several.json", "review_endpointslice.json"]) {
    const r = rv.review(fixture(name)).response;
    assertEquals(r.patch, undefined, name);
    assertEquals(r.warnings?.length, 1, name);
    assert(r.warnings![0].startsWith('edgemesh: node "edge-1": annotation'), name);
    assert(r.warnings![0].includes("6m00s old"), name);
  }
  const stale = metrics.counter("edgemesh_admission_stale_annotations_total", "", ["resource"]);
  assertEquals([stale.get({ resource: "endpoints" }), stale.get({ resource: "endpointslices" })], [
    1,
    1,
  ]);
});

Deno.test("a max annotation age that is not a positive duration is refused", () => {
  for (const bad of [0, -1, NaN, Infinity]) {
    assertThrows(() => reviewer({ maxAnnotationAgeMs: bad }), AdmissionConfigError, String(bad));
  }
  assertEquals(reviewer().maxAnnotationAgeMs, 5 * MIN);
});

Deno.test("alwaysReachable together with unit checking is refused", () => {
  assertThrows(() => reviewer({ alwaysReachable: true, unitCheck: true }), AdmissionConfigError);
  reviewer({ alwaysReachable: false, unitCheck: true });
});

Deno.test("admissionHandler answers a body that is not JSON with an allowed review", async () => {
  const h = admissionHandler(reviewer());
  const res = await h(new Request("https://x/mutate", { method: "POST", body: "{not json" }));
  assertEquals(res.status, 200);
  const body = await res.json();
  assertEquals([body.kind, body.response.allowed, body.response.warnings.length], [
    "AdmissionReview",
    true,
    1,
  ]);
});

Deno.test("serveAdmission serves reviews over HTTPS", async () => {
  const pki = await TestPki.create();
  const ctl = new AbortController();
  try {
    const caCert = await pki.ca("test-ca", 1);
    const leaf = await pki.node(caCert, "127.0.0.1", {
      subject: "/CN=127.0.0.1",
      ips: ["127.0.0.1"],
      days: 1,
    });
    const ca = await Deno.readTextFile(caCert.certFile);
    const cert = await Deno.readTextFile(leaf.certFile);
    const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
    const server = serveAdmission(reviewer(), {
      hostname: "127.0.0.1",
      port: 0,
      cert,
      key: await Deno.readTextFile(leaf.keyFile),
      signal: ctl.signal,
      onListen: resolve,
    });
    const addr = await listening;
    const client = Deno.createHttpClient({ caCerts: [ca] });
    try {
      const res = await fetch(`https://127.0.0.1:${addr.port}/mutate`, {
        method: "POST",
        body: JSON.stringify(fixture("review_node_unknown_voted_healthy.json")),
        client,
      });
      const body = await res.json();
      assertEquals(JSON.parse(atob(body.response.patch)), [{
        op: "remove",
        path: "/spec/taints/2",
      }]);
    } finally {
      client.close();
      ctl.abort();
      await server.finished;
    }
  } finally {
    ctl.abort();
    await pki.close();
  }
});

Deno.test("examples/admission-webhook.yaml registers UPDATE of nodes, endpoints, endpointslices with failurePolicy Ignore", async () => {
  const { parseAllDocuments } = await import("yaml");
  const text = await Deno.readTextFile(
    new URL("../../examples/admission-webhook.yaml", import.meta.url),
  );
  const docs = parseAllDocuments(text).map((d) => {
    assertEquals(d.errors.length, 0);
    return d.toJS();
  });
  const cfg = docs.find((d) => d.kind === "MutatingWebhookConfiguration");
  const hooks = cfg.webhooks as {
    failurePolicy: string;
    admissionReviewVersions: string[];
    rules: { operations: string[]; resources: string[] }[];
  }[];
  assert(
    hooks.every((h) => h.failurePolicy === "Ignore" && h.admissionReviewVersions.includes("v1")),
  );
  const rules = hooks.flatMap((h) => h.rules);
  assert(rules.every((r) => r.operations.join() === "UPDATE"));
  assertEquals(rules.flatMap((r) => r.resources).sort(), ["endpoints", "endpointslices", "nodes"]);
});
