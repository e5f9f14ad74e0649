import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { HealthView } from "../contracts/mod.ts";
import { ClusterStore, type KindMap, StoreCatalog } from "../kube/mod.ts";
import { memoryLogger } from "../log/mod.ts";
import { DestinationResolver, NoEndpointReason } from "./destinations.ts";
import { roundRobinPickers } from "./picker.ts";

function setup(verdicts: Record<string, "healthy" | "unhealthy"> = {}) {
  const store = new ClusterStore();
  const { logger, lines } = memoryLogger();
  const health: HealthView = { verdict: (n) => verdicts[n] ?? "unknown", onChange: () => () => {} };
  const r = new DestinationResolver({
    catalog: new StoreCatalog(store),
    store,
    health,
    pickers: roundRobinPickers,
    log: logger,
  });
  store.upsert("services", {
    metadata: { name: "web", namespace: "ns" },
    spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }, { name: "admin", port: 9000 }] },
  });
  const ep = (ip: string, pod: string, node: string) => ({
    addresses: [ip],
    conditions: { ready: true },
    nodeName: node,
    targetRef: { kind: "Pod", name: pod },
  });
  store.upsert(
    "endpointslices",
    {
      metadata: { name: "web-1", namespace: "ns", labels: { "kubernetes.io/service-name": "web" } },
      endpoints: [ep("10.0.0.1", "p1", "n1"), ep("10.0.0.2", "p2", "n2")],
      ports: [{ name: "http", port: 8080 }, { name: "admin", port: 9001 }],
    } as KindMap["endpointslices"],
  );
  return { store, r, lines };
}

Deno.test("DestinationResolver maps a service port to endpoint ports and drops endpoints of unhealthy nodes", () => {
  const { r } = setup({ n2: "unhealthy" });
  const d = r.resolve({ namespace: "ns", service: "web", port: 80 });
  assert(!(d instanceof NoEndpointReason));
  assertEquals(d.endpoints.map((e) => e.id), ["10.0.0.1:8080"]);
  assertEquals(d.key, "ns/web:80");
  const admin = r.resolve({ namespace: "ns", service: "web", port: 9000 });
  assert(!(admin instanceof NoEndpointReason));
  assertEquals(admin.endpoints.map((e) => e.port), [9001]);
});

Deno.test("DestinationResolver explains what is missing", () => {
  const { r } = setup();
  const cases: [string, number | undefined, string][] = [
    ["nosuch", 80, "not found"],
    ["web", 81, "no TCP port 81"],
    ["web", undefined, "several ports"],
  ];
  for (const [service, port, text] of cases) {
    const d = r.resolve({ namespace: "ns", service, port });
    assert(
      d instanceof NoEndpointReason && d.message.includes(text),
      String((d as NoEndpointReason).message),
    );
  }
  const s = r.resolve({ namespace: "ns", service: "web", port: 80, subset: "v9" });
  assert(s instanceof NoEndpointReason && s.message.includes("v9"));
});

Deno.test("subsets filter endpoints by pod labels, and are ignored with one log when labels are unknown", () => {
  const { store, r, lines } = setup();
  store.upsert("destinationrules", {
    metadata: { name: "web-rule", namespace: "ns" },
    spec: {
      host: "web.ns.svc.cluster.local",
      subsets: [{ name: "v2", labels: { version: "v2" } }],
    },
  });
  let d = r.resolve({ namespace: "ns", service: "web", port: 80, subset: "v2" });
  assert(!(d instanceof NoEndpointReason));
  assertEquals(d.endpoints.length, 2, "no pod known: subset ignored");
  r.resolve({ namespace: "ns", service: "web", port: 80, subset: "v2" });
  assertEquals(lines.filter((l) => String(l.msg).startsWith("subset ignored")).length, 1);
  store.upsert("pods", { metadata: { name: "p1", namespace: "ns", labels: { version: "v1" } } });
  store.upsert("pods", { metadata: { name: "p2", namespace: "ns", labels: { version: "v2" } } });
  d = r.resolve({ namespace: "ns", service: "web", port: 80, subset: "v2" });
  assert(!(d instanceof NoEndpointReason));
  assertEquals(d.endpoints.map((e) => e.ip), ["10.0.0.2"]);
});
