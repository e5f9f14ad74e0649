import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Duplex } from "./duplex.ts";
import { parseRequestHead, pickRequestFor, readRequestHead } from "./http_head.ts";

/** A Duplex over fixed chunks, recording writes. */
function fake(chunks: string[]): Duplex & { written: string } {
  const enc = new TextEncoder();
  const queue = chunks.map((c) => enc.encode(c));
  const d = {
    written: "",
    read: (buf: Uint8Array) => {
      const c = queue.shift();
      if (!c) return Promise.resolve(null);
      buf.set(c);
      return Promise.resolve(c.length);
    },
    write: (data: Uint8Array) => {
      d.written += new TextDecoder().decode(data);
      return Promise.resolve();
    },
    closeWrite: () => Promise.resolve(),
    close: () => {},
  };
  return d;
}

Deno.test("readRequestHead() reads a head split across reads and keeps the body bytes", async () => {
  const r = await readRequestHead(
    fake([
      "GET /a?u=7&x=1 HTTP/1.1\r\nHost: web\r\nX-User: al",
      "ice\r\nCookie: a=1; sid=abc\r\n\r\nBODY",
    ]),
    new Uint8Array(1024),
    1000,
  );
  assert(r.head);
  assert(new TextDecoder().decode(r.bytes).endsWith("\r\n\r\nBODY"));
  const p = pickRequestFor(r.head, "192.0.2.1");
  assertEquals(p.header!("x-user"), "alice");
  assertEquals(p.header!("X-USER"), "alice");
  assertEquals(p.cookie!("sid"), "abc");
  assertEquals(p.query!("u"), "7");
  assertEquals(p.query!("none"), undefined);
});

Deno.test("readRequestHead() passes non-HTTP streams through unparsed", async () => {
  const r = await readRequestHead(fake(["\x16\x03\x01 binary"]), new Uint8Array(1024), 1000);
  assertEquals(r.head, undefined);
  assertEquals(r.bytes.length, 10);
});

Deno.test("parseRequestHead() keeps repeated headers", () => {
  const h = parseRequestHead("POST / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n");
  assertEquals(h.headers.get("a"), ["1", "2"]);
  assertEquals(h.method, "POST");
});
