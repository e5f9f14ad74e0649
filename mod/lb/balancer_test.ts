/** One conformance suite, run against every balancer. */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Balancer, PickRequest } from "./balancer.ts";
import { createBalancer, type LbPolicy } from "./policy.ts";
import { type Ep, eps, ManualClock, seededRandom } from "./test_util.ts";

const POLICIES: [string, LbPolicy, { affinity?: boolean }][] = [
  ["ROUND_ROBIN", { kind: "simple", simple: "ROUND_ROBIN" }, {}],
  ["RANDOM", { kind: "simple", simple: "RANDOM" }, {}],
  ["LEAST_REQUEST", { kind: "simple", simple: "LEAST_REQUEST" }, {}],
  ["ROUND_ROBIN+ClientIP", { kind: "simple", simple: "ROUND_ROBIN" }, { affinity: true }],
  ["hash(header)", { kind: "hash", key: { kind: "header", name: "x-user" } }, {}],
  ["hash(cookie)", { kind: "hash", key: { kind: "cookie", name: "sid", path: "/", ttlMs: 0 } }, {}],
  ["hash(sourceIp)", { kind: "hash", key: { kind: "sourceIp" } }, {}],
  ["hash(query)", { kind: "hash", key: { kind: "query", name: "u" } }, {}],
];

function make(policy: LbPolicy, o: { affinity?: boolean }, seed = 1): Balancer<Ep> {
  const clock = new ManualClock();
  return createBalancer<Ep>(policy, { random: seededRandom(seed), now: clock.now }, {
    clientIpAffinityMs: o.affinity ? 10_000 : undefined,
  });
}

/** A request whose every key source varies with i. */
function req(i: number): PickRequest {
  const v = `k${i}`;
  return {
    clientIp: `192.0.2.${i % 250}`,
    header: (n) => (n === "x-user" ? v : undefined),
    cookie: (n) => (n === "sid" ? v : undefined),
    query: (n) => (n === "u" ? v : undefined),
  };
}

for (const [name, policy, o] of POLICIES) {
  Deno.test(`${name}: pick() returns undefined when there are no endpoints`, () => {
    const b = make(policy, o);
    assertEquals(b.pick(req(0)), undefined);
    b.update([]);
    assertEquals(b.pick(req(0)), undefined);
  });

  Deno.test(`${name}: pick() only returns endpoints it was given and accepts`, () => {
    const b = make(policy, o);
    const list = eps(5);
    b.update(list);
    const ids = new Set(list.map((e) => e.id));
    for (let i = 0; i < 200; i++) {
      const p = b.pick(req(i), (e) => e.id !== list[0].id)!;
      assert(ids.has(p.endpoint.id));
      assert(p.endpoint.id !== list[0].id);
      p.release();
    }
    assertEquals(b.pick(req(1), () => false), undefined);
  });

  Deno.test(`${name}: pick() reaches every endpoint across varied requests`, () => {
    const b = make(policy, o);
    const list = eps(4);
    b.update(list);
    const seen = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const p = b.pick(req(i))!;
      seen.add(p.endpoint.id);
      p.release();
    }
    assertEquals(seen.size, 4);
  });

  Deno.test(`${name}: update() drops removed endpoints and keeps in-flight counts`, () => {
    const b = make(policy, o);
    const list = eps(3);
    b.update(list);
    const held = b.pick(req(7))!;
    assertEquals(b.active(held.endpoint.id), 1);
    b.update(list.filter((e) => e.id !== list[2].id));
    for (let i = 0; i < 100; i++) {
      const p = b.pick(req(i))!;
      assert(p.endpoint.id !== list[2].id);
      p.release();
    }
    if (held.endpoint.id !== list[2].id) assertEquals(b.active(held.endpoint.id), 1);
    held.release();
    held.release(); // idempotent
    assertEquals(b.active(held.endpoint.id), 0);
  });

  Deno.test(`${name}: a single acceptable endpoint is always chosen`, () => {
    const b = make(policy, o);
    const list = eps(6);
    b.update(list);
    for (let i = 0; i < 50; i++) {
      const p = b.pick(req(i), (e) => e.id === list[3].id)!;
      assertEquals(p.endpoint.id, list[3].id);
    }
  });
}
