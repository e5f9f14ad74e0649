import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { checkObject } from "./validate.ts";
import type { Kind } from "./types.ts";

const meta = { namespace: "ns", name: "x" };

Deno.test("checkObject names the first malformed field, or returns the object without managedFields", () => {
  const cases: [Kind, unknown, string | undefined][] = [
    ["services", { metadata: meta, spec: { ports: [{ port: 80 }] } }, undefined],
    ["services", { metadata: { namespace: "ns" } }, "metadata.name"],
    ["services", { metadata: { name: 7, namespace: "ns" } }, "metadata.name"],
    ["services", { metadata: { name: "x" } }, "metadata.namespace"],
    ["services", { metadata: meta, spec: { ports: [{ port: 70000 }] } }, "spec.ports[0].port"],
    ["services", { metadata: meta, spec: { clusterIPs: ["a", 1] } }, "spec.clusterIPs[1]"],
    ["services", { metadata: { ...meta, labels: { a: 1 } } }, "metadata.labels.a"],
    ["endpoints", { metadata: meta, subsets: [{ addresses: [{}] }] }, "subsets[0].addresses[0].ip"],
    [
      "endpointslices",
      { metadata: meta, endpoints: [{ addresses: "1.2.3.4" }] },
      "endpoints[0].addresses",
    ],
    ["endpointslices", {
      metadata: meta,
      endpoints: [{ addresses: [], conditions: { ready: "yes" } }],
    }, "endpoints[0].conditions.ready"],
    [
      "nodes",
      { metadata: { name: "n" }, status: { addresses: [{ type: "InternalIP" }] } },
      "status.addresses[0].address",
    ],
    ["nodes", { metadata: { name: "n" } }, undefined],
    ["pods", { metadata: meta, status: { podIP: 1 } }, "status.podIP"],
    ["configmaps", { metadata: meta, data: { k: 1 } }, "data.k"],
    ["secrets", { metadata: meta, data: "x" }, "data"],
    ["virtualservices", { metadata: meta, spec: { hosts: [1] } }, "spec.hosts[0]"],
    ["gateways", { metadata: meta, spec: { servers: [null] } }, undefined],
    ["gateways", "nope", ""],
  ];
  for (const [kind, raw, field] of cases) {
    const r = checkObject(kind, raw);
    assertEquals(r.ok ? undefined : r.error.field, field, `${kind} ${JSON.stringify(raw)}`);
  }
  const ok = checkObject("nodes", {
    metadata: { name: "n", namespace: "ignored", managedFields: [{}] },
  });
  assertEquals(ok.ok && ok.object.metadata, { name: "n" });
  const dflt = checkObject("services", { metadata: { name: "x" } }, "default");
  assertEquals(dflt.ok && dflt.object.metadata.namespace, "default");
});
