import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { memoryLogger } from "../log/mod.ts";
import { waitFor } from "../../tests/support/wait.ts";
import {
  applySnapshot,
  decodeSnapshot,
  encodeSnapshot,
  SNAPSHOT_FILE,
  SnapshotFiles,
  storeObjects,
} from "./snapshot.ts";
import { SnapshotWriter } from "./snapshot_writer.ts";
import { ClusterStore } from "./store.ts";
import type { Service } from "./types.ts";

function svc(name: string, port = 80): Service {
  return {
    metadata: { namespace: "snap", name, resourceVersion: String(port) },
    spec: { clusterIP: "198.19.0.5", ports: [{ port, protocol: "TCP" }] },
  };
}

function filledStore(): ClusterStore {
  const store = new ClusterStore();
  store.upsert("services", svc("a"));
  store.upsert("services", svc("b", 81));
  store.upsert("nodes", { metadata: { name: "n1", labels: { "1": "x", b: "y" } } });
  store.upsert("configmaps", {
    metadata: { namespace: "kubeedge", name: "c" },
    data: { k: "é ünïcode \u2028" },
  });
  return store;
}

Deno.test("snapshot files round-trip the store and leave no temp files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { logger } = memoryLogger();
    const files = new SnapshotFiles(dir, { logger });
    const store = filledStore();
    await files.save(storeObjects(store));
    assertEquals((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), [SNAPSHOT_FILE]);
    assertEquals((await Deno.stat(join(dir, SNAPSHOT_FILE))).mode! & 0o777, 0o600);
    const loaded = await files.load();
    assert(loaded);
    assertEquals(loaded.count, 4);
    const copy = new ClusterStore();
    applySnapshot(copy, loaded);
    assertEquals(storeObjects(copy), storeObjects(store));
    const head = JSON.parse(await Deno.readTextFile(join(dir, SNAPSHOT_FILE)));
    assertEquals([head.format, head.version, head.sha256.length], [
      "edgemesh.cluster-snapshot",
      1,
      64,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("decodeSnapshot refuses truncated, tampered, foreign and future files", async () => {
  const good = await encodeSnapshot(storeObjects(filledStore()));
  const cases: [string, string, RegExp][] = [
    ["truncated", good.slice(0, good.length / 2), /not valid JSON/],
    ["empty", "", /not valid JSON/],
    ["tampered", good.replace('"port":81', '"port":82'), /checksum mismatch/],
    ["foreign", JSON.stringify({ hello: 1 }), /unknown format/],
    ["future", good.replace('"version":1', '"version":2'), /unsupported version 2/],
  ];
  for (const [what, text, re] of cases) {
    let msg = "";
    try {
      await decodeSnapshot("/x", text);
    } catch (err) {
      msg = (err as Error).message;
    }
    assert(re.test(msg), `${what}: ${msg}`);
  }
});

Deno.test("a corrupt snapshot is moved aside and logged, never thrown", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { logger, lines } = memoryLogger();
    const files = new SnapshotFiles(dir, { logger, now: () => 1234 });
    const good = await encodeSnapshot(storeObjects(filledStore()));
    await Deno.writeTextFile(join(dir, SNAPSHOT_FILE), good.slice(0, 100));
    assertEquals(await files.load(), undefined);
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    assertEquals(names, [`${SNAPSHOT_FILE}.corrupt-1234`]);
    const line = lines.find((l) => l.level === "error");
    assert(String(line?.problem).includes("not valid JSON"));
    // No file at all is simply "no snapshot".
    assertEquals(await files.load(), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SnapshotWriter saves after changes, debounced, and flushes on stop", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { logger } = memoryLogger();
    const files = new SnapshotFiles(dir, { logger });
    const store = new ClusterStore();
    const writer = new SnapshotWriter({ store, files, logger }, { debounceMs: 50 });
    writer.start();
    for (let i = 0; i < 20; i++) store.upsert("services", svc(`s${i}`, 1000 + i));
    await waitFor(
      async () => (await files.load())?.count === 20,
      "snapshot with 20 services",
      2000,
    );
    store.delete("services", "snap", "s0");
    await writer.stop();
    assertEquals((await files.load())?.count, 19);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
