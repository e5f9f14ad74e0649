/**
 * HTTP/1.1 keep-alive connections whose balancer hashes on request data (header, cookie,
 * query): every request is balanced on its own. Requests are handled one at a time: the head
 * is parsed, the endpoint picked, head and body (Content-Length or chunked) forwarded on a
 * connection to that endpoint (kept per endpoint for the session), and the response (framed
 * by status, Content-Length, chunked or close) copied back before the next request is read.
 * A 101 Switching Protocols (WebSocket) turns the session into a plain relay. When the
 * endpoint fails before the first response byte, a body-less request that went out on a kept
 * connection (the endpoint may have closed it while idle) is retried once on a new one;
 * otherwise the client gets a 502 and the session ends.
 */

import type { Picked, PickRequest } from "../lb/mod.ts";
import { BufReader } from "./buf_reader.ts";
import type { Connected } from "./connector.ts";
import type { Duplex } from "./duplex.ts";
import { HttpHeadError } from "./errors.ts";
import { parseRequestHead, pickRequestFor } from "./http_head.ts";
import { relay } from "./relay.ts";
import type { ProxyEndpoint } from "./service_table.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const MAX_UPSTREAMS = 4;
/** Stands in for a pick already released when no new one could be made. */
const NO_PICK = { release() {} } as unknown as Picked<ProxyEndpoint>;

export interface HttpSessionOptions {
  bufferBytes: number;
  idleTimeoutMs: number;
  signal: AbortSignal;
  clientIp: string;
  /** Picks and connects (with retries); `existing` offers a connection the session already has. */
  connect(
    request: PickRequest,
    existing: (id: string) => Connected | undefined,
  ): Promise<[Picked<ProxyEndpoint>, Connected] | undefined>;
  onBytes(direction: "tx" | "rx", n: number): void;
  now: () => number;
}

interface Upstream {
  id: string;
  conn: Connected;
  reader: BufReader;
}

export async function httpSession(
  client: Duplex,
  initial: Uint8Array,
  o: HttpSessionOptions,
): Promise<void> {
  const creader = new BufReader(client, o.bufferBytes, initial);
  const upstreams = new Map<string, Upstream>();
  let last = o.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closeAll = () => {
    client.close();
    for (const u of upstreams.values()) u.conn.duplex.close();
  };
  const arm = (ms: number) => {
    timer = setTimeout(() => {
      const idle = o.now() - last;
      if (idle >= o.idleTimeoutMs) closeAll();
      else arm(o.idleTimeoutMs - idle);
    }, ms);
  };
  if (o.idleTimeoutMs > 0) arm(o.idleTimeoutMs);
  o.signal.addEventListener("abort", closeAll, { once: true });
  const dropUpstream = (u: Upstream) => {
    u.conn.duplex.close();
    if (upstreams.get(u.id) === u) upstreams.delete(u.id);
  };
  /** Answers 502 and ends the session (the client may be gone too: then nothing to tell). */
  const badGateway = async (err: unknown): Promise<void> => {
    const why = err instanceof Error ? err.message : String(err);
    const body = encoder.encode(`edgemesh: the endpoint failed before responding: ${why}\n`);
    const head = encoder.encode(
      "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\n" +
        `content-length: ${body.length}\r\nconnection: close\r\n\r\n`,
    );
    try {
      await client.write(head);
      await client.write(body);
      rx(head.length + body.length);
      await client.closeWrite();
    } catch {
      // The client left as well.
    }
  };
  const tx = (n: number) => {
    last = o.now();
    o.onBytes("tx", n);
  };
  const rx = (n: number) => {
    last = o.now();
    o.onBytes("rx", n);
  };
  try {
    for (;;) {
      const headBytes = await creader.readHead();
      if (headBytes === null) return;
      const head = parseRequestHead(decoder.decode(headBytes));
      const te = head.headers.get("transfer-encoding")?.join(",").toLowerCase() ?? "";
      const cl = Number(head.headers.get("content-length")?.[0] ?? 0);
      const bodyless = !te.includes("chunked") && !(cl > 0);
      const existing = (id: string) => upstreams.get(id)?.conn;
      const pick = () =>
        o.connect(pickRequestFor(head, o.clientIp), existing).then((r) => {
          if (!r) return undefined;
          const [p, conn] = r;
          let u = upstreams.get(p.endpoint.id);
          const reused = u !== undefined;
          if (!u) {
            u = { id: p.endpoint.id, conn, reader: new BufReader(conn.duplex, o.bufferBytes) };
            upstreams.set(u.id, u);
            if (upstreams.size > MAX_UPSTREAMS) {
              const [oldId, old] = upstreams.entries().next().value!;
              old.conn.duplex.close();
              upstreams.delete(oldId);
            }
          }
          return [p, u, reused] as const;
        });
      let picked = await pick();
      if (!picked) return;
      let p = picked[0];
      let u = picked[1];
      let outcome: "keep" | "close" | "upgrade";
      /** Response bytes already on their way to the client: past that point no 502 fits. */
      let answered = 0;
      const rxClient = (n: number) => {
        answered += n;
        rx(n);
      };
      /** Sends the request (head, then body) on `u` and copies the response back. */
      const exchange = async (u: Upstream) => {
        const up = u.conn.duplex;
        await up.write(headBytes);
        tx(headBytes.length);
        if (te.includes("chunked")) await creader.forwardChunked(up, tx);
        else if (cl > 0) await creader.forward(cl, up, tx);
        return await forwardResponse(u.reader, client, head.method, p.setCookie, rxClient);
      };
      try {
        try {
          outcome = await exchange(u);
        } catch (err) {
          if (answered > 0 || o.signal.aborted) throw err;
          // The endpoint closed or broke the connection before any response byte.
          dropUpstream(u);
          // A kept connection the endpoint closed while idle: one retry on a new connection
          // when nothing but the head was sent (the body would have to be replayed).
          if (!(picked[2] && bodyless)) return await badGateway(err);
          p.release();
          picked = await pick().catch(() => undefined);
          if (!picked) {
            // `p` was released above; the finally below must not release it twice.
            p = NO_PICK;
            return await badGateway(err);
          }
          p = picked[0];
          u = picked[1];
          try {
            outcome = await exchange(u);
          } catch (err2) {
            if (answered > 0 || o.signal.aborted) throw err2;
            dropUpstream(u);
            return await badGateway(err2);
          }
        }
        const up = u.conn.duplex;
        if (outcome === "upgrade") {
          const fromClient = creader.drain();
          if (fromClient.length) await up.write(fromClient);
          const fromUp = u.reader.drain();
          if (fromUp.length) await client.write(fromUp);
          await relay(client, up, {
            bufferBytes: o.bufferBytes,
            idleTimeoutMs: o.idleTimeoutMs,
            signal: o.signal,
            onBytes: o.onBytes,
            now: o.now,
          });
          return;
        }
        if (outcome === "close") {
          await client.closeWrite();
          return;
        }
        const conn = head.headers.get("connection")?.join(",").toLowerCase() ?? "";
        if (conn.includes("close") || head.version === "HTTP/1.0" && !conn.includes("keep-alive")) {
          return;
        }
      } finally {
        p.release();
      }
    }
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener("abort", closeAll);
    for (const u of upstreams.values()) u.conn.duplex.close();
  }
}

/** Copies one response; "upgrade" after a 101, "close" when the response ends the connection. */
async function forwardResponse(
  up: BufReader,
  client: Duplex,
  method: string,
  setCookie: string | undefined,
  rx: (n: number) => void,
): Promise<"keep" | "close" | "upgrade"> {
  for (;;) {
    let head = await up.readHead();
    if (head === null) throw new HttpHeadError("closed", "endpoint closed before responding");
    const text = decoder.decode(head);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? NaN);
    if (!Number.isFinite(status)) {
      throw new HttpHeadError(
        "malformed",
        `bad HTTP status line ${JSON.stringify(text.slice(0, 60))}`,
      );
    }
    if (status >= 100 && status < 200 && status !== 101) {
      await client.write(head);
      rx(head.length);
      continue;
    }
    if (setCookie) {
      const lineEnd = head.indexOf(10) + 1;
      const extra = encoder.encode(`Set-Cookie: ${setCookie}\r\n`);
      const h = new Uint8Array(head.length + extra.length);
      h.set(head.subarray(0, lineEnd));
      h.set(extra, lineEnd);
      h.set(head.subarray(lineEnd), lineEnd + extra.length);
      head = h;
    }
    await client.write(head);
    rx(head.length);
    if (status === 101) return "upgrade";
    const r = parseRequestHeadersOnly(text);
    const closeAfter = (r.get("connection") ?? "").toLowerCase().includes("close");
    if (method === "HEAD" || status === 204 || status === 304) return closeAfter ? "close" : "keep";
    if ((r.get("transfer-encoding") ?? "").toLowerCase().includes("chunked")) {
      await up.forwardChunked(client, rx);
    } else if (r.has("content-length")) {
      await up.forward(Number(r.get("content-length")), client, rx);
    } else {
      await up.forwardToEnd(client, rx);
      return "close";
    }
    return closeAfter ? "close" : "keep";
  }
}

function parseRequestHeadersOnly(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\r\n").slice(1)) {
    const c = line.indexOf(":");
    if (c > 0) m.set(line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim());
  }
  return m;
}
