import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { ClusterStore, type Node } from "../kube/mod.ts";
import { HealthOptionsError } from "./errors.ts";
import { groupOf, readGroupConfig, unitsOf } from "./groups.ts";
import { loadOrCreateIdentity, SignatureVerifier } from "./identity.ts";
import { effectiveFanout, resolveHealthOptions } from "./options.ts";

const n = (name: string, ...units: string[]): Node => ({
  metadata: { name, labels: Object.fromEntries(units.map((u) => [u, "nodeunits.superedge.io"])) },
});
const nodes = [n("a", "east"), n("b", "east", "west"), n("c", "west"), n("d")];

Deno.test("groupOf() puts every node in group * when unit checking is off", () => {
  assertEquals(groupOf("d", nodes, { unitInternalCheck: false, checkUnits: [] }), {
    name: "*",
    members: ["a", "b", "c", "d"],
  });
});

Deno.test("groupOf() follows NodeUnit labels and check-units when unit checking is on", () => {
  const all = { unitInternalCheck: true, checkUnits: [] };
  assertEquals(groupOf("a", nodes, all), { name: "east", members: ["a", "b"] });
  assertEquals(groupOf("c", nodes, all), { name: "west", members: ["c"] });
  assertEquals(groupOf("d", nodes, all), undefined);
  const westOnly = { unitInternalCheck: true, checkUnits: ["west"] };
  assertEquals(groupOf("b", nodes, westOnly), { name: "west", members: ["b", "c"] });
  assertEquals(groupOf("a", nodes, westOnly), undefined);
  assertEquals(unitsOf(nodes[1]), ["east", "west"]);
});

Deno.test("readGroupConfig() reads SuperEdge's ConfigMap keys", () => {
  const store = new ClusterStore();
  assertEquals(readGroupConfig(store), { unitInternalCheck: false, checkUnits: [] });
  store.upsert("configmaps", {
    metadata: { name: "edge-health-config", namespace: "kube-system" },
    data: { "unit-internal-check": "True", "check-units": " east, west ,," },
  });
  assertEquals(readGroupConfig(store), { unitInternalCheck: true, checkUnits: ["east", "west"] });
});

Deno.test("resolveHealthOptions() fills defaults and collects every problem", () => {
  const o = resolveHealthOptions({ nodeName: "a" });
  assertEquals([o.listenPort, o.probeIntervalMs, o.voteTimeoutMs, o.probeRetries, o.kubeletPort], [
    51005,
    10_000,
    30_000,
    2,
    0,
  ]);
  assertThrows(
    () =>
      resolveHealthOptions({
        nodeName: "",
        listenPort: 70000,
        probeIntervalMs: 1000,
        voteTimeoutMs: 500,
      }),
    (e: unknown) => e instanceof HealthOptionsError && e.problems.length === 3,
  );
});

Deno.test("effectiveFanout() is everyone in small groups and logarithmic in large ones", () => {
  assertEquals([
    effectiveFanout(1),
    effectiveFanout(5),
    effectiveFanout(16),
    effectiveFanout(50),
    effectiveFanout(1000),
  ], [0, 4, 15, 8, 12]);
  assertEquals(effectiveFanout(5, 2), 2);
});

Deno.test("loadOrCreateIdentity() keeps the same key across restarts", async () => {
  const dir = await Deno.makeTempDir({ prefix: `health-id-${Deno.pid}-` });
  try {
    const a = await loadOrCreateIdentity(dir);
    const b = await loadOrCreateIdentity(dir);
    assertEquals(a.publicKey, b.publicKey);
    const data = new TextEncoder().encode("hello");
    assertEquals(await new SignatureVerifier().verify(a.publicKey, data, await b.sign(data)), true);
    assertEquals((await Deno.stat(`${dir}/health-identity.pkcs8`)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
