import { equal } from "node:assert/strict";
import { ClusterStore, nodeCloudNotReady } from "./mod.ts";

Deno.test("nodeCloudNotReady() is true only when the node's Ready condition is False or Unknown", () => {
  const store = new ClusterStore();
  const cases: [string, "True" | "False" | "Unknown" | undefined, boolean][] = [
    ["ready", "True", false],
    ["down", "False", true],
    ["lost", "Unknown", true],
    ["bare", undefined, false],
  ];
  for (const [name, status] of cases) {
    store.upsert("nodes", {
      metadata: { name, resourceVersion: "1" },
      status: status ? { conditions: [{ type: "Ready", status }] } : {},
    });
  }
  for (const [name, , want] of cases) equal(nodeCloudNotReady(store, name), want, name);
  equal(nodeCloudNotReady(store, "absent"), false);
});
