/**
 * Bad input: crafted malformed queries get FORMERR/NOTIMP or are dropped; thousands of random
 * and mutated packets (through the handler, then over UDP and TCP) never crash the server,
 * every answer decodes and fits the UDP limit, and a valid query is answered afterwards.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import packet from "dns-packet";
import { Buffer } from "node:buffer";
import { isServing } from "../lifecycle/mod.ts";
import { nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { AnswerCache } from "./cache.ts";
import { Forwarder } from "./forwarder.ts";
import { DnsHandler } from "./handler.ts";
import { dnsMetrics } from "./metrics.ts";
import { DnsServer } from "./server.ts";
import { dig, encodeQuery, fakeHealth, FakeUpstream, NS, sampleCluster } from "./test_support.ts";
import { UpstreamClient } from "./upstream.ts";
import { ClusterZone } from "./zone.ts";

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = [
  encodeQuery({ id: 1, name: `hostname-lb-svc.${NS}.svc.cluster.local`, type: "A" }),
  encodeQuery({ id: 2, name: `hl.${NS}`, type: "A", edns: true }),
  encodeQuery({ id: 3, name: `_web._tcp.hl.${NS}.svc.cluster.local`, type: "SRV" }),
  encodeQuery({ id: 4, name: "10.0.19.198.in-addr.arpa", type: "PTR" }),
  encodeQuery({ id: 5, name: "www.example.org", type: "AAAA", edns: true }),
  encodeQuery({ id: 6, name: "1-2-3-4.default.pod.cluster.local", type: "A" }),
];

/** A random packet: pure noise, or a seed query mutated in one of several ways. */
function fuzzPacket(r: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(r() * n);
  const kind = pick(8);
  if (kind === 0) return crypto.getRandomValues(new Uint8Array(pick(600)));
  const seed = SEEDS[pick(SEEDS.length)];
  let p = seed.slice();
  switch (kind) {
    case 1: // flip bytes
      for (let i = 0, n = 1 + pick(6); i < n; i++) p[pick(p.length)] = pick(256);
      break;
    case 2: // truncate
      p = p.slice(0, pick(p.length));
      break;
    case 3: // append garbage and bump the additional count
      p = new Uint8Array([...p, ...crypto.getRandomValues(new Uint8Array(1 + pick(64)))]);
      p[11] = pick(4);
      break;
    case 4: // counts
      p[4 + pick(8)] = pick(256);
      break;
    case 5: { // a compression loop in an additional record
      const loopAt = p.length;
      p = new Uint8Array([
        ...p,
        0xc0 | (loopAt >> 8),
        loopAt & 0xff,
        0,
        41,
        4,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
      ]);
      p[11] = 1;
      break;
    }
    case 6: // header flags: opcode, QR, Z
      p[2] = pick(256);
      p[3] = pick(256);
      break;
    default: // a label length pointing past the end, or a pointer in the question
      p[12 + pick(Math.max(1, p.length - 16))] = pick(2) ? 0xc0 : 63;
  }
  return p;
}

function makeHandler(upstreams: string[] = []) {
  const { catalog } = sampleCluster();
  const metrics = dnsMetrics(new Registry());
  const zone = new ClusterZone({ catalog, health: fakeHealth({}) }, {
    domain: "cluster.local",
    ttlSeconds: 30,
  });
  const client = new UpstreamClient();
  const cache = new AnswerCache({ maxEntries: 100, maxBytes: 1 << 20, maxTtlMs: 30_000 }, Date.now);
  const forwarder = new Forwarder({ client, cache, metrics, logger: nullLogger(), now: Date.now }, {
    upstreams: upstreams.map((u) => ({
      hostname: "127.0.0.1",
      port: Number(u.split(":")[1]),
      label: u,
    })),
    upstreamTimeoutMs: 200,
    upstreamAttemptTimeoutMs: 100,
    maxUdpPayload: 1232,
    maxInflightForwards: 64,
    cacheMaxTtlMs: 30_000,
  });
  const handler = new DnsHandler({ zone, forwarder, metrics, logger: nullLogger() }, 1232);
  return { handler, client, metrics };
}

function rcodeOf(resp: Uint8Array): number {
  return resp[3] & 0xf;
}

Deno.test("malformed queries get FORMERR or NOTIMP, responses and short packets are dropped", () => {
  const { handler, client } = makeHandler();
  const q = encodeQuery({ id: 9, name: `hl.${NS}`, type: "A" });
  const two = q.slice();
  two[5] = 2; // QDCOUNT 2
  const notify = q.slice();
  notify[2] = (4 << 3) | 1; // opcode NOTIFY
  const response = q.slice();
  response[2] |= 0x80;
  const chaos = encodeQuery({ id: 9, name: "version.bind", type: "TXT" });
  chaos[chaos.length - 1] = 3; // class CH
  const axfr = encodeQuery({ id: 9, name: "cluster.local", type: "AXFR" });
  const cases: [string, Uint8Array, number | null][] = [
    ["QDCOUNT 2", two, 1],
    [
      "QDCOUNT 0",
      (() => {
        const z = q.slice(0, 12);
        return z;
      })(),
      1,
    ],
    ["opcode NOTIFY", notify, 4],
    ["a response", response, null],
    ["11 bytes", q.slice(0, 11), null],
    ["truncated question", q.slice(0, q.length - 2), 1],
    ["class CH", chaos, 4],
    ["AXFR", axfr, 4],
  ];
  for (const [what, msg, rcode] of cases) {
    const r = handler.handle(msg, "udp");
    assert(!(r instanceof Promise), what);
    if (rcode === null) {
      assertEquals(r, null, what);
      continue;
    }
    assert(r, what);
    assertEquals([rcodeOf(r), r[0], r[1]], [rcode, 0, 9], what);
    packet.decode(Buffer.from(r)); // decodable
  }
  client.close();
});

Deno.test("20,000 random and mutated packets through the handler: no throw, every answer decodes and fits", async () => {
  const { handler, client } = makeHandler();
  const r = rng(0xd15ea5e);
  const pending: Promise<unknown>[] = [];
  const check = (msg: Uint8Array, resp: Uint8Array | null) => {
    if (!resp) return;
    assert(resp.length >= 12);
    assertEquals([resp[0], resp[1]], [msg[0], msg[1]]);
    assert(resp[2] & 0x80, "QR set");
    assert(resp.length <= 1232, `fits the UDP limit: ${resp.length}`);
    try {
      packet.decode(Buffer.from(resp));
    } catch (err) {
      throw new Error(`undecodable answer ${[...resp]} to ${[...msg]}`, { cause: err });
    }
  };
  for (let i = 0; i < 20_000; i++) {
    const msg = fuzzPacket(r);
    const res = handler.handle(msg, "udp");
    if (res instanceof Promise) {
      const copy = msg.slice();
      pending.push(res.then((resp) => check(copy, resp)));
    } else check(msg, res);
  }
  await Promise.all(pending);
  await client.close();
});

for (const udpPath of ["portable", "batched"] as const) {
  Deno.test(`after thousands of bad packets over UDP and TCP the server still answers dig [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    const up = new FakeUpstream({ records: {} });
    const s = new DnsServer({ logger: nullLogger(), metrics: new Registry(), catalog }, {
      listenAddresses: ["127.0.0.1"],
      listenPort: 0,
      clusterDomain: "cluster.local",
      ttlMs: 30_000,
      upstreamServers: [up.address],
      upstreamTimeoutMs: 300,
      tcpIdleTimeoutMs: 500,
      udpPath,
    });
    await s.start(new AbortController().signal);
    const sender = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    try {
      const r = rng(42);
      const target = { transport: "udp" as const, hostname: "127.0.0.1", port: s.port };
      for (let i = 0; i < 5000; i++) await sender.send(fuzzPacket(r), target);
      // TCP: random frames, absurd lengths, half-written messages, on several connections.
      for (let c = 0; c < 20; c++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
        try {
          for (let i = 0; i < 10; i++) {
            const p = fuzzPacket(r);
            const framed = new Uint8Array(p.length + 2);
            const len = c % 4 === 0 ? Math.floor(r() * 65536) : p.length;
            framed[0] = len >> 8;
            framed[1] = len & 0xff;
            framed.set(p, 2);
            await conn.write(framed).catch(() => {});
          }
        } finally {
          conn.close();
        }
      }
      const ok = await dig(s.port, `hostname-lb-svc.${NS}.svc.cluster.local`, "A");
      assertEquals([ok.status, ok.answer[0]?.data], ["NOERROR", "198.19.0.10"]);
      const tcp = await dig(s.port, `hl.${NS}`, "A", ["+tcp"]);
      assertEquals(tcp.status, "NOERROR");
      // Still serving ("degraded" is fine: the fake upstream ignores undecodable queries).
      assert(isServing(s.status().state), s.status().state);
    } finally {
      sender.close();
      await s.stop();
      await up.close();
    }
  });
}
