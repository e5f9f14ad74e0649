import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  cloudEffect,
  majorityOf,
  type MemberDecision,
  rowsFromMaps,
  vote,
  writerOf,
} from "./vote.ts";

/**
 * A simulated group: each live node probes every other (ok when alive and linked), and
 * holds the digests of the live nodes it is linked to (its own included). Returns each live
 * node's vote.
 */
function round(
  members: string[],
  alive: Set<string>,
  linked: (a: string, b: string) => boolean,
  now: number,
  previous: Map<string, Map<string, MemberDecision>>,
) {
  const verdicts: Record<string, Record<string, { ok: boolean; observedAt: number }>> = {};
  for (const o of members) {
    if (!alive.has(o)) continue;
    verdicts[o] = {};
    for (const t of members) {
      verdicts[o][t] = { ok: t === o || (alive.has(t) && linked(o, t)), observedAt: now };
    }
  }
  const out = new Map<string, ReturnType<typeof vote>>();
  for (const me of members) {
    if (!alive.has(me)) continue;
    const held: typeof verdicts = {};
    for (const o of Object.keys(verdicts)) if (o === me || linked(me, o)) held[o] = verdicts[o];
    const r = vote({
      members,
      rows: rowsFromMaps(members, held),
      now,
      voteTimeoutMs: 30_000,
      previous: previous.get(me),
    });
    previous.set(me, r.decisions);
    out.set(me, r);
  }
  return out;
}

const split = (...sides: string[][]) => (a: string, b: string) =>
  sides.some((s) => s.includes(a) && s.includes(b));
const all = () => true;
const view = (r: ReturnType<typeof vote>) =>
  Object.fromEntries([...r.decisions].map(([n, d]) => [n, d.verdict]));

Deno.test("majorityOf() is a strict majority of the group size", () => {
  assertEquals([1, 2, 3, 4, 5, 6, 1000].map(majorityOf), [1, 2, 2, 3, 3, 4, 501]);
});

interface PartitionCase {
  name: string;
  members: string[];
  sides: string[][];
  /** Expected view of each node after the split (nodes not listed: same as before). */
  expect: Record<string, Record<string, string>>;
  writers: Record<string, string | undefined>;
}

const five = ["a", "b", "c", "d", "e"];
const allHealthy5 = { a: "healthy", b: "healthy", c: "healthy", d: "healthy", e: "healthy" };
const cases: PartitionCase[] = [
  {
    name: "2|3: the majority side condemns the minority; the minority decides nothing",
    members: five,
    sides: [["a", "b"], ["c", "d", "e"]],
    expect: {
      a: allHealthy5,
      b: allHealthy5,
      c: { a: "unhealthy", b: "unhealthy", c: "healthy", d: "healthy", e: "healthy" },
      d: { a: "unhealthy", b: "unhealthy", c: "healthy", d: "healthy", e: "healthy" },
      e: { a: "unhealthy", b: "unhealthy", c: "healthy", d: "healthy", e: "healthy" },
    },
    writers: { a: undefined, b: undefined, c: "c", d: "c", e: "c" },
  },
  {
    name: "1|4: the lone node is voted unhealthy and cannot condemn the four",
    members: five,
    sides: [["a"], ["b", "c", "d", "e"]],
    expect: {
      a: allHealthy5,
      b: { a: "unhealthy", b: "healthy", c: "healthy", d: "healthy", e: "healthy" },
      e: { a: "unhealthy", b: "healthy", c: "healthy", d: "healthy", e: "healthy" },
    },
    writers: { a: undefined, b: "b", c: "b", d: "b", e: "b" },
  },
  {
    name: "3|3: no side holds a majority; everyone keeps the last decision",
    members: ["a", "b", "c", "d", "e", "f"],
    sides: [["a", "b", "c"], ["d", "e", "f"]],
    expect: Object.fromEntries(
      ["a", "b", "c", "d", "e", "f"].map((
        n,
      ) => [n, {
        a: "healthy",
        b: "healthy",
        c: "healthy",
        d: "healthy",
        e: "healthy",
        f: "healthy",
      }]),
    ),
    writers: { a: undefined, b: undefined, c: undefined, d: undefined, e: undefined, f: undefined },
  },
];

for (const c of cases) {
  Deno.test(`vote() partition ${c.name}`, () => {
    const prev = new Map<string, Map<string, MemberDecision>>();
    const alive = new Set(c.members);
    const before = round(c.members, alive, all, 1_000, prev);
    for (const r of before.values()) {
      assertEquals(Object.values(view(r)).every((v) => v === "healthy"), true);
    }
    const after = round(c.members, alive, split(...c.sides), 11_000, prev);
    for (const [node, expected] of Object.entries(c.expect)) {
      assertEquals(view(after.get(node)!), expected, node);
    }
    for (const [node, w] of Object.entries(c.writers)) {
      assertEquals(writerOf(after.get(node)!.freshHealthy), w, node);
    }
    // The majority side is never judged unhealthy, by anyone.
    const majority = c.sides.find((s) => s.length >= majorityOf(c.members.length)) ?? [];
    for (const r of after.values()) {
      for (const m of majority) assertEquals(r.decisions.get(m)!.verdict, "healthy");
    }
  });
}

Deno.test("vote() cascading failures: condemned while a majority lives, then the last decision stands", () => {
  const prev = new Map<string, Map<string, MemberDecision>>();
  const alive = new Set(five);
  round(five, alive, all, 1_000, prev);
  alive.delete("e");
  let r = round(five, alive, all, 11_000, prev);
  assertEquals(view(r.get("a")!), {
    a: "healthy",
    b: "healthy",
    c: "healthy",
    d: "healthy",
    e: "unhealthy",
  });
  assertEquals(r.get("a")!.changed, ["e"]);
  alive.delete("d");
  r = round(five, alive, all, 21_000, prev);
  assertEquals(view(r.get("c")!), {
    a: "healthy",
    b: "healthy",
    c: "healthy",
    d: "unhealthy",
    e: "unhealthy",
  });
  alive.delete("c");
  r = round(five, alive, all, 31_000, prev);
  // Two of five cannot decide: c keeps "healthy", nobody is the writer.
  assertEquals(view(r.get("a")!), {
    a: "healthy",
    b: "healthy",
    c: "healthy",
    d: "unhealthy",
    e: "unhealthy",
  });
  assertEquals(r.get("a")!.decisions.get("c")!.unhealthy, 2);
  assertEquals(writerOf(r.get("a")!.freshHealthy), undefined);
  // c comes back: three of five again, and it is healthy.
  alive.add("c");
  r = round(five, alive, all, 41_000, prev);
  assertEquals(r.get("b")!.decisions.get("c")!.majority, "healthy");
  assertEquals(writerOf(r.get("b")!.freshHealthy), "a");
});

Deno.test("vote() ignores stale verdicts and keeps the last decision", () => {
  const members = ["a", "b", "c"];
  const fresh = rowsFromMaps(members, {
    a: {
      a: { ok: true, observedAt: 0 },
      b: { ok: true, observedAt: 0 },
      c: { ok: false, observedAt: 0 },
    },
    b: {
      a: { ok: true, observedAt: 0 },
      b: { ok: true, observedAt: 0 },
      c: { ok: false, observedAt: 0 },
    },
  });
  const first = vote({ members, rows: fresh, now: 1_000, voteTimeoutMs: 30_000 });
  assertEquals(first.decisions.get("c")!.verdict, "unhealthy");
  assertEquals(first.decisions.get("c")!.decidedAt, 1_000);
  const later = vote({
    members,
    rows: fresh,
    now: 31_000,
    voteTimeoutMs: 30_000,
    previous: first.decisions,
  });
  assertEquals(later.decisions.get("c")!.verdict, "unhealthy");
  assertEquals(later.decisions.get("c")!.unhealthy, 0);
  assertEquals(later.decisions.get("c")!.decidedAt, 1_000);
  assertEquals(later.changed, []);
  assertEquals(later.freshHealthy, []);
});

Deno.test("vote() counts each observer once and ignores non-members", () => {
  const members = ["a", "b", "c"];
  const rows = rowsFromMaps(members, {
    a: { c: { ok: false, observedAt: 0 } },
    x: { c: { ok: false, observedAt: 0 } },
  });
  const r = vote({ members, rows: [...rows, rows[0]], now: 0, voteTimeoutMs: 1_000 });
  assertEquals(r.decisions.get("c")!.unhealthy, 1);
  assertEquals(r.decisions.get("c")!.verdict, "unknown");
});

Deno.test("vote() reports members that left the group as changed", () => {
  const prev = new Map<string, MemberDecision>([["z", {
    node: "z",
    verdict: "healthy",
    healthy: 3,
    unhealthy: 0,
  }]]);
  const r = vote({ members: ["a"], rows: [], now: 0, voteTimeoutMs: 1_000, previous: prev });
  assertEquals(r.changed, ["z"]);
  assertEquals(r.decisions.has("z"), false);
});

Deno.test("cloudEffect() follows the decision table", () => {
  assertEquals(cloudEffect("healthy", "True"), "normal");
  assertEquals(cloudEffect("healthy", "Unknown"), "keep");
  assertEquals(cloudEffect("healthy", "False"), "keep");
  assertEquals(cloudEffect("unhealthy", "True"), "normal");
  assertEquals(cloudEffect("unhealthy", "Unknown"), "evict");
  assertEquals(cloudEffect("unknown", "Unknown"), "evict");
});
