import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { encodeQuery } from "./test_support.ts";
import { isFailure, type ParsedQuery, parseQuery, skipName } from "./wire.ts";
import { truncateIfNeeded } from "./response.ts";
import { buildMessage } from "./writer.ts";

Deno.test("parseQuery reads the question, lower-cases the name and finds the OPT", () => {
  const q = parseQuery(
    encodeQuery({ id: 7, name: "Web-0.HL.ns", type: "AAAA", edns: true }),
  ) as ParsedQuery;
  assertEquals([q.id, q.qname, q.qtype, q.qclass, q.edns, q.udpSize], [
    7,
    "web-0.hl.ns",
    28,
    1,
    true,
    1232,
  ]);
  const plain = parseQuery(encodeQuery({ id: 7, name: "a", type: "A" })) as ParsedQuery;
  assertEquals([plain.edns, plain.udpSize], [false, 512]);
});

Deno.test("parseQuery escapes dots and odd bytes inside labels so they never match plain names", () => {
  // One label "a.b" (with a dot byte) must not become the two labels "a" and "b".
  const msg = new Uint8Array([
    0,
    1,
    1,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    3,
    97,
    46,
    98,
    1,
    0xc8,
    0,
    0,
    1,
    0,
    1,
  ]);
  const q = parseQuery(msg) as ParsedQuery;
  assertEquals(q.qname, "a\\.b.\\200");
});

Deno.test("parseQuery rejects over-long names, pointers in the question and bad OPT placement", () => {
  const long = new Uint8Array([
    0,
    1,
    1,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    ...Array(5).fill([63, ...Array(63).fill(97)]).flat(),
    0,
    0,
    1,
    0,
    1,
  ]);
  assertEquals((parseQuery(long) as { error: string }).error, "formerr");
  const pointer = new Uint8Array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
  assertEquals((parseQuery(pointer) as { error: string }).error, "formerr");
  const twoOpts = encodeQuery({ id: 1, name: "a", type: "A", edns: true });
  const doubled = new Uint8Array([...twoOpts, ...twoOpts.slice(twoOpts.length - 11)]);
  doubled[11] = 2;
  assertEquals((parseQuery(doubled) as { error: string }).error, "formerr");
  assert(isFailure(parseQuery(new Uint8Array(5))));
});

Deno.test("skipName stops at a pointer, so compression loops cannot spin", () => {
  const loop = new Uint8Array([0xc0, 0]);
  assertEquals(skipName(loop, 0), 2);
  assertEquals(skipName(new Uint8Array([5, 97]), 0), -1);
});

Deno.test("MessageWriter compresses owner names against the question", () => {
  const msg = buildMessage({
    qname: "svc.ns.svc.cluster.local",
    qtype: 1,
    rcode: 0,
    authoritative: true,
    answers: [{ name: "svc.ns.svc.cluster.local", type: 1, ttl: 5, data: "198.19.0.1" }],
  });
  const qEnd = skipName(msg, 12) + 4;
  assertEquals([msg[qEnd], msg[qEnd + 1]], [0xc0, 12]);
  assertEquals(msg.length, qEnd + 2 + 10 + 4);
});

Deno.test("truncateIfNeeded answers an empty TC message when the answer exceeds the limit", () => {
  const msg = encodeQuery({ id: 3, name: "a", type: "A" });
  const q = parseQuery(msg) as ParsedQuery;
  const big = new Uint8Array(600);
  big[3] = 0;
  const t = truncateIfNeeded(big, msg, q, 512, 1232);
  assertEquals([t.length, t[2] & 0x02, t[7]], [q.questionEnd, 0x02, 0]);
  assertEquals(truncateIfNeeded(big.subarray(0, 100), msg, q, 512, 1232).length, 100);
});
