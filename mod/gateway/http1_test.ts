import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import { BufReader } from "./buf_reader.ts";
import { HttpParseError } from "./errors.ts";
import {
  BodyReader,
  parseRequestHead,
  requestFraming,
  responseFraming,
  stripHopByHop,
} from "./http1.ts";

function reader(...parts: string[]): BufReader {
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) c.enqueue(enc.encode(p));
      c.close();
    },
  });
  return new BufReader(stream.getReader());
}

async function readAll(body: BodyReader): Promise<string> {
  let s = "";
  for (let p = await body.next(); p; p = await body.next()) s += new TextDecoder().decode(p);
  return s;
}

Deno.test("BufReader.readHead() finds a head split across reads and keeps the rest buffered", async () => {
  const buf = reader("GET /a HT", "TP/1.1\r\nHost: x\r", "\n\r\nbody");
  const head = await buf.readHead(1024, 1000, 1000);
  const req = parseRequestHead(head!, 10);
  assertEquals([req.method, req.target, req.version, req.headers], ["GET", "/a", "HTTP/1.1", [[
    "Host",
    "x",
  ]]]);
  assertEquals(new TextDecoder().decode(buf.takeBuffered()), "body");
});

Deno.test("BufReader.readHead() returns null at a clean end and rejects oversized heads", async () => {
  assertEquals(await reader().readHead(100, 1000, 1000), null);
  await rejects(
    reader("GET / HTTP/1.1\r\nX: " + "a".repeat(200)).readHead(100, 1000, 1000),
    (e: unknown) => e instanceof HttpParseError && e.tooLarge,
  );
});

Deno.test("parseRequestHead() bounds the header count and refuses malformed lines", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  throws(
    () => parseRequestHead(enc("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n"), 2),
    (e: unknown) => e instanceof HttpParseError && e.tooLarge,
  );
  throws(() => parseRequestHead(enc("GET / HTTP/2\r\n\r\n"), 10), HttpParseError);
  throws(() => parseRequestHead(enc("GET / HTTP/1.1\r\nbad header\r\n\r\n"), 10), HttpParseError);
  throws(
    () => parseRequestHead(enc("GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n"), 10),
    HttpParseError,
  );
});

Deno.test("BodyReader de-chunks a chunked body split anywhere, dropping trailers", async () => {
  const buf = reader("5\r\nhel", "lo\r\n6;ext=1\r\n wor", "ld\r\n0\r\nTrailer: x\r\n\r\nNEXT");
  const body = new BodyReader(buf, { kind: "chunked" }, 1000);
  assertEquals(await readAll(body), "hello world");
  assert(body.done);
  assertEquals(new TextDecoder().decode(buf.takeBuffered()), "NEXT");
});

Deno.test("BodyReader reads exactly Content-Length bytes and fails on a short body", async () => {
  const buf = reader("abc", "defNEXT");
  assertEquals(await readAll(new BodyReader(buf, { kind: "length", length: 6 }, 1000)), "abcdef");
  await rejects(
    readAll(new BodyReader(reader("abc"), { kind: "length", length: 6 }, 1000)),
    HttpParseError,
  );
});

Deno.test("framing follows RFC 9112 and refuses ambiguous requests", () => {
  assertEquals(requestFraming([["Content-Length", "5"]]), { kind: "length", length: 5 });
  assertEquals(requestFraming([["Transfer-Encoding", "gzip, chunked"]]), { kind: "chunked" });
  assertEquals(requestFraming([]), { kind: "none" });
  throws(
    () => requestFraming([["Content-Length", "5"], ["Transfer-Encoding", "chunked"]]),
    HttpParseError,
  );
  throws(() => requestFraming([["Content-Length", "5, 6"]]), HttpParseError);
  assertEquals(responseFraming("HEAD", 200, [["Content-Length", "5"]]), { kind: "none" });
  assertEquals(responseFraming("GET", 304, []), { kind: "none" });
  assertEquals(responseFraming("GET", 200, []), { kind: "close" });
});

Deno.test("stripHopByHop() drops hop-by-hop headers and those Connection names", () => {
  const out = stripHopByHop([
    ["Connection", "keep-alive, X-Private"],
    ["X-Private", "1"],
    ["Keep-Alive", "5"],
    ["TE", "trailers"],
    ["Accept", "*/*"],
  ]);
  assertEquals(out, [["Accept", "*/*"]]);
});
