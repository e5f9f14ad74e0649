import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import packet from "dns-packet";
import { Buffer } from "node:buffer";
import { AnswerCache, renderStored, storeForm } from "./cache.ts";
import { encodeQuery } from "./test_support.ts";
import { isFailure, type ParsedQuery, parseQuery } from "./wire.ts";

function answer(
  rcode: number,
  answers: packet.Answer[],
  authorities: packet.Answer[] = [],
  opt = true,
): Uint8Array {
  return new Uint8Array(packet.encode({
    id: 77,
    type: "response",
    flags: packet.RECURSION_AVAILABLE | packet.AUTHORITATIVE_ANSWER | rcode,
    questions: [{ name: "a.example", type: "A", class: "IN" }],
    answers,
    authorities,
    additionals: opt ? [{ type: "OPT", name: ".", udpPayloadSize: 4096 } as packet.Answer] : [],
  }));
}

function query(edns = false): { msg: Uint8Array; q: ParsedQuery } {
  const msg = encodeQuery({ id: 4242, name: "A.Example", type: "A", edns });
  const q = parseQuery(msg);
  if (isFailure(q)) throw new Error("bad query");
  return { msg, q };
}

const SOA = {
  name: "example",
  type: "SOA" as const,
  ttl: 300,
  data: { mname: "ns", rname: "h", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 15 },
};

Deno.test("storeForm keeps the smallest TTL for positive answers and the SOA's for negative ones", () => {
  const qEnd = parseQuery(encodeQuery({ id: 1, name: "a.example", type: "A" })) as ParsedQuery;
  const pos = storeForm(
    answer(0, [
      { name: "a.example", type: "A", ttl: 40, data: "192.0.2.1" },
      { name: "a.example", type: "A", ttl: 25, data: "192.0.2.2" },
    ]),
    qEnd.questionEnd,
    3_600_000,
  )!;
  assertEquals(pos.cacheMs, 25_000);
  assertEquals(pos.bytes[11], 0, "OPT stripped");
  const neg = storeForm(answer(3, [], [SOA]), qEnd.questionEnd, 3_600_000)!;
  assertEquals(neg.cacheMs, 15_000, "min(SOA TTL, SOA MINIMUM)");
  const capped = storeForm(answer(3, [], [SOA]), qEnd.questionEnd, 5_000)!;
  assertEquals(capped.cacheMs, 5_000);
  assertEquals(
    storeForm(answer(3, []), qEnd.questionEnd, 3_600_000)!.cacheMs,
    0,
    "no SOA: not cached",
  );
  assertEquals(
    storeForm(answer(2, []), qEnd.questionEnd, 3_600_000)!.cacheMs,
    0,
    "SERVFAIL: not cached",
  );
  assertEquals(
    storeForm(answer(0, []).slice(0, 30), qEnd.questionEnd, 1000),
    undefined,
    "malformed",
  );
});

Deno.test("renderStored patches ID, question case and OPT, and counts TTLs down", () => {
  const { q: q0 } = query();
  const stored = storeForm(
    answer(0, [{ name: "a.example", type: "A", ttl: 40, data: "192.0.2.1" }]),
    q0.questionEnd,
    60_000,
  )!;
  for (const edns of [false, true]) {
    const { msg, q } = query(edns);
    const out = renderStored(stored, msg, q, 12_500, 1232);
    const d = packet.decode(Buffer.from(out));
    assertEquals(d.id, 4242);
    assertEquals(d.questions![0].name, "A.Example");
    assertEquals(d.answers!.map((a) => (a as { ttl: number }).ttl), [28]);
    assert(!(d.flags! & packet.AUTHORITATIVE_ANSWER), "AA cleared");
    assertEquals(d.additionals!.map((a) => a.type), edns ? ["OPT"] : []);
  }
});

Deno.test("AnswerCache expires entries by TTL and evicts the least recently used beyond its bounds", () => {
  let now = 1_000;
  const cache = new AnswerCache({ maxEntries: 2, maxBytes: 1 << 20, maxTtlMs: 60_000 }, () => now);
  const { q } = query();
  const s = (ttl: number) =>
    storeForm(
      answer(0, [{ name: "a.example", type: "A", ttl, data: "192.0.2.1" }]),
      q.questionEnd,
      60_000,
    )!;
  cache.set("a", s(10));
  cache.set("b", s(30));
  now += 5_000;
  assertEquals(cache.get("a")?.ageMs, 5_000);
  cache.set("c", s(30)); // evicts "b", the least recently used
  assertEquals([!!cache.get("a"), !!cache.get("b"), !!cache.get("c")], [true, false, true]);
  now += 5_000;
  assertEquals(cache.get("a"), undefined, "expired after 10 s");
  assertEquals(cache.size, 1);
  const tiny = new AnswerCache({ maxEntries: 100, maxBytes: 300, maxTtlMs: 60_000 }, () => now);
  for (const k of ["x", "y", "z"]) tiny.set(k, s(30));
  assert(tiny.bytes <= 300 && tiny.size < 3, `bounded by bytes: ${tiny.bytes}`);
});
