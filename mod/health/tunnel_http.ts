/**
 * One HTTP/1.1 request to a peer's health agent through the Dialer (the tunnel, directly or
 * via a relay), for members not reachable directly. The peer's own health HTTP server
 * answers it — its tunnel dials the health listen port locally — so nothing new listens.
 * The whole exchange (dial, request, response) is bounded by one deadline, the response
 * head and body by sizes; the stream is closed on every path.
 */

import type { ByteStream, Dialer, PathKind } from "../contracts/mod.ts";
import { HealthTunnelError } from "./errors.ts";

export interface TunnelTarget {
  /** The member's node name: the tunnel routes to it. */
  node: string;
  /** Its health listen address and port, as dialed from its own side. */
  hostname: string;
  port: number;
}

export interface TunnelRequest {
  method: "GET" | "POST";
  path: string;
  body?: Uint8Array;
  contentType?: string;
}

export interface TunnelResponse {
  status: number;
  body: Uint8Array;
  /** How the stream travelled ("tunnel-direct" or "tunnel-relay" from the tunnel). */
  path: PathKind;
  relay?: string;
}

export interface TunnelFetchOptions {
  /** Dial, request and response together. */
  timeoutMs: number;
  /** Largest response body accepted. */
  maxBody: number;
  signal?: AbortSignal;
}

const MAX_HEAD = 16 * 1024;
const CRLF2 = new Uint8Array([13, 10, 13, 10]);

/** Sends `req` to `target` over a stream from `dialer`; throws DialError, HealthTunnelError. */
export async function tunnelFetch(
  dialer: Dialer,
  target: TunnelTarget,
  req: TunnelRequest,
  opts: TunnelFetchOptions,
): Promise<TunnelResponse> {
  const where = `${target.node} (${hostPort(target)})`;
  const ctl = new AbortController();
  const timer = setTimeout(
    () => ctl.abort(new HealthTunnelError("timeout", where, `no answer in ${opts.timeoutMs} ms`)),
    opts.timeoutMs,
  );
  const onAbort = () => ctl.abort(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  let stream: ByteStream | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    ctl.signal.throwIfAborted();
    stream = await race(
      dialer.dialStream(
        { protocol: "tcp", node: target.node, ip: target.hostname, port: target.port },
        { signal: ctl.signal, timeoutMs: opts.timeoutMs },
      ),
      ctl.signal,
      (late) => late.close(),
    );
    const writer = stream.writable.getWriter();
    try {
      await race(writer.write(encodeRequest(target, req)), ctl.signal);
    } finally {
      writer.releaseLock();
    }
    reader = stream.readable.getReader();
    const { status, body } = await readResponse(reader, ctl.signal, opts.maxBody, where);
    return { status, body, path: stream.path, relay: stream.relay };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
    reader?.cancel().catch(() => {});
    stream?.close();
  }
}

function hostPort(a: { hostname: string; port: number }): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

function encodeRequest(target: TunnelTarget, req: TunnelRequest): Uint8Array {
  const body = req.body ?? new Uint8Array();
  let head = `${req.method} ${req.path} HTTP/1.1\r\nHost: ${hostPort(target)}\r\n` +
    `Connection: close\r\n`;
  if (req.method === "POST") {
    head += `Content-Type: ${req.contentType ?? "application/octet-stream"}\r\n` +
      `Content-Length: ${body.length}\r\n`;
  }
  const h = new TextEncoder().encode(head + "\r\n");
  const out = new Uint8Array(h.length + body.length);
  out.set(h);
  out.set(body, h.length);
  return out;
}

/**
 * Resolves like `p` unless `signal` aborts first (then rejects with its reason); a value `p`
 * produces after losing is handed to `cleanup`, a late rejection is swallowed.
 */
async function race<T>(
  p: Promise<T>,
  signal: AbortSignal,
  cleanup?: (late: T) => void,
): Promise<T> {
  let onAbort: (() => void) | undefined;
  let lost = false;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason);
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } catch (err) {
    lost = true;
    throw err;
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
    if (lost) p.then((v) => cleanup?.(v), () => {});
  }
}

/** Accumulates stream bytes, never more than `limit` in all. */
class Buffered {
  #buf = new Uint8Array(4096);
  len = 0;
  eof = false;
  constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    private readonly signal: AbortSignal,
    private readonly limit: number,
    private readonly where: string,
  ) {}

  get bytes(): Uint8Array {
    return this.#buf.subarray(0, this.len);
  }

  /** Reads one more chunk; false at end of stream. */
  async more(): Promise<boolean> {
    if (this.eof) return false;
    const r = await race(this.reader.read(), this.signal);
    if (r.done) {
      this.eof = true;
      return false;
    }
    const need = this.len + r.value.length;
    if (need > this.limit) {
      throw new HealthTunnelError("too-large", this.where, `response over ${this.limit} bytes`);
    }
    if (need > this.#buf.length) {
      const next = new Uint8Array(Math.min(this.limit, Math.max(need, this.#buf.length * 2)));
      next.set(this.bytes);
      this.#buf = next;
    }
    this.#buf.set(r.value, this.len);
    this.len = need;
    return true;
  }
}

async function readResponse(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  signal: AbortSignal,
  maxBody: number,
  where: string,
): Promise<{ status: number; body: Uint8Array }> {
  const b = new Buffered(reader, signal, MAX_HEAD + maxBody, where);
  const malformed = (why: string) => new HealthTunnelError("malformed", where, why);
  let headEnd = -1;
  while ((headEnd = indexOf(b.bytes, CRLF2)) < 0) {
    if (b.len > MAX_HEAD) throw malformed(`response head over ${MAX_HEAD} bytes`);
    if (!await b.more()) throw malformed("stream ended before the response head");
  }
  const head = new TextDecoder().decode(b.bytes.subarray(0, headEnd));
  const [statusLine, ...lines] = head.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!m) throw malformed(`bad status line ${JSON.stringify(statusLine.slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  const start = headEnd + 4;
  const te = headers.get("transfer-encoding")?.toLowerCase();
  if (te !== undefined && te !== "identity") {
    if (te !== "chunked") throw malformed(`transfer-encoding ${te}`);
    return { status: Number(m[1]), body: await readChunked(b, start, maxBody, malformed) };
  }
  const cl = headers.get("content-length");
  if (cl !== undefined) {
    if (!/^\d{1,10}$/.test(cl)) throw malformed(`bad content-length ${JSON.stringify(cl)}`);
    const n = Number(cl);
    if (n > maxBody) {
      throw new HealthTunnelError("too-large", where, `content-length ${n} over ${maxBody}`);
    }
    while (b.len - start < n) {
      if (!await b.more()) throw malformed(`stream ended after ${b.len - start} of ${n} bytes`);
    }
    return { status: Number(m[1]), body: b.bytes.slice(start, start + n) };
  }
  // Neither: the body runs to the end of the stream (we sent Connection: close).
  while (await b.more()) { /* bounded by the Buffered limit */ }
  return { status: Number(m[1]), body: b.bytes.slice(start) };
}

async function readChunked(
  b: Buffered,
  start: number,
  maxBody: number,
  malformed: (why: string) => HealthTunnelError,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  let pos = start;
  const line = async (): Promise<string> => {
    let end: number;
    while ((end = indexOf(b.bytes.subarray(pos), CRLF2.subarray(2))) < 0) {
      if (b.len - pos > 1024) throw malformed("chunk size line too long");
      if (!await b.more()) throw malformed("stream ended inside a chunk header");
    }
    const s = new TextDecoder().decode(b.bytes.subarray(pos, pos + end));
    pos += end + 2;
    return s;
  };
  for (;;) {
    const sizeText = (await line()).split(";")[0].trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw malformed(`bad chunk size "${sizeText}"`);
    const size = parseInt(sizeText, 16);
    if (size === 0) break;
    total += size;
    if (total > maxBody) throw malformed(`chunked body over ${maxBody} bytes`);
    while (b.len - pos < size + 2) {
      if (!await b.more()) throw malformed("stream ended inside a chunk");
    }
    parts.push(b.bytes.slice(pos, pos + size));
    pos += size + 2;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
