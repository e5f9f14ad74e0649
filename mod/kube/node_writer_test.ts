import { deepStrictEqual, rejects } from "node:assert/strict";
import { TestMetaServer } from "../../tests/support/metaserver.ts";
import { KubeApiError, NodeAnnotationWriter } from "./mod.ts";

Deno.test("NodeAnnotationWriter merge-patches annotations on the metaserver; null removes one", async () => {
  const ms = await TestMetaServer.start();
  try {
    ms.apply({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "edge-1", annotations: { keep: "1", drop: "x" } },
    });
    const w = new NodeAnnotationWriter({ server: ms.url });
    await w.patchNodeAnnotations("edge-1", {
      "edgemesh.kubeedge.io/edge-health": "{}",
      drop: null,
    });
    deepStrictEqual(ms.get("v1", "Node", undefined, "edge-1")?.metadata.annotations, {
      keep: "1",
      "edgemesh.kubeedge.io/edge-health": "{}",
    });
    await rejects(
      w.patchNodeAnnotations("absent", { a: "b" }),
      (e: unknown) => e instanceof KubeApiError && e.status === 404,
    );
  } finally {
    await ms.stop();
  }
});
