/** HTTP/1.1 message heads and body framing (RFC 9112), enough for a streaming proxy. */

import type { BufReader } from "./buf_reader.ts";
import { HttpParseError } from "./errors.ts";
import type { Wire } from "./wire.ts";

export type HeaderList = [string, string][];

export interface RequestHead {
  method: string;
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  headers: HeaderList;
}

export interface ResponseHead {
  version: string;
  status: number;
  reason: string;
  headers: HeaderList;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// deno-lint-ignore no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

function splitLines(head: Uint8Array): string[] {
  const text = new TextDecoder("latin1").decode(head);
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  while (lines.length && lines[0] === "") lines.shift();
  return lines;
}

function parseHeaderLines(lines: string[], maxCount: number): HeaderList {
  if (lines.length > maxCount) {
    throw new HttpParseError(`more than ${maxCount} header fields`, true);
  }
  const out: HeaderList = [];
  for (const line of lines) {
    if (line.startsWith(" ") || line.startsWith("\t")) {
      throw new HttpParseError("obsolete line folding");
    }
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new HttpParseError(`malformed header line ${JSON.stringify(line.slice(0, 40))}`);
    }
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) {
      throw new HttpParseError(`bad header name ${JSON.stringify(name.slice(0, 40))}`);
    }
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE.test(value)) throw new HttpParseError(`bad value of header ${name}`);
    out.push([name, value]);
  }
  return out;
}

export function parseRequestHead(head: Uint8Array, maxCount: number): RequestHead {
  const lines = splitLines(head);
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0] ?? "");
  if (!m) {
    throw new HttpParseError(
      `malformed request line ${JSON.stringify((lines[0] ?? "").slice(0, 60))}`,
    );
  }
  return {
    method: m[1],
    target: m[2],
    version: m[3] as RequestHead["version"],
    headers: parseHeaderLines(lines.slice(1), maxCount),
  };
}

export function parseResponseHead(head: Uint8Array, maxCount: number): ResponseHead {
  const lines = splitLines(head);
  const m = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? "");
  if (!m) {
    throw new HttpParseError(
      `malformed status line ${JSON.stringify((lines[0] ?? "").slice(0, 60))}`,
    );
  }
  return {
    version: m[1],
    status: Number(m[2]),
    reason: m[3] ?? "",
    headers: parseHeaderLines(lines.slice(1), maxCount),
  };
}

export function serializeHead(startLine: string, headers: HeaderList): Uint8Array {
  let s = startLine + "\r\n";
  for (const [k, v] of headers) s += `${k}: ${v}\r\n`;
  return new TextEncoder().encode(s + "\r\n");
}

export function getHeader(headers: HeaderList, name: string): string | undefined {
  const n = name.toLowerCase();
  const vals = headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  return vals.length ? vals.join(", ") : undefined;
}

export function removeHeader(headers: HeaderList, name: string): HeaderList {
  const n = name.toLowerCase();
  return headers.filter(([k]) => k.toLowerCase() !== n);
}

export function setHeader(headers: HeaderList, name: string, value: string): HeaderList {
  return [...removeHeader(headers, name), [name, value]];
}

/** Comma-separated tokens of a header, lower-cased. */
export function headerTokens(headers: HeaderList, name: string): string[] {
  return (getHeader(headers, name) ?? "").split(",").map((t) => t.trim().toLowerCase()).filter(
    Boolean,
  );
}

/** Hop-by-hop headers, plus those named in Connection. */
export function stripHopByHop(headers: HeaderList): HeaderList {
  const drop = new Set([
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
  ]);
  for (const t of headerTokens(headers, "connection")) drop.add(t);
  return headers.filter(([k]) => !drop.has(k.toLowerCase()));
}

export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

/** Body framing of a request (RFC 9112 §6.3); throws on ambiguous framing. */
export function requestFraming(headers: HeaderList): Framing {
  const te = headerTokens(headers, "transfer-encoding");
  const cl = getHeader(headers, "content-length");
  if (te.length) {
    if (cl !== undefined) throw new HttpParseError("both Transfer-Encoding and Content-Length");
    if (te[te.length - 1] !== "chunked") {
      throw new HttpParseError("request Transfer-Encoding must end in chunked");
    }
    return { kind: "chunked" };
  }
  if (cl !== undefined) return { kind: "length", length: parseLength(cl) };
  return { kind: "none" };
}

/** Body framing of a response to `method`. */
export function responseFraming(method: string, status: number, headers: HeaderList): Framing {
  if (method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { kind: "none" };
  }
  const te = headerTokens(headers, "transfer-encoding");
  if (te.length) return te[te.length - 1] === "chunked" ? { kind: "chunked" } : { kind: "close" };
  const cl = getHeader(headers, "content-length");
  if (cl !== undefined) return { kind: "length", length: parseLength(cl) };
  return { kind: "close" };
}

function parseLength(v: string): number {
  const parts = v.split(",").map((p) => p.trim());
  if (!parts.every((p) => p === parts[0]) || !/^\d{1,15}$/.test(parts[0])) {
    throw new HttpParseError(`bad Content-Length ${JSON.stringify(v)}`);
  }
  return Number(parts[0]);
}

const MAX_CHUNK_LINE = 4096;
const READ_MAX = 64 * 1024;

/** Reads a body's content (de-chunked) piece by piece. */
export class BodyReader {
  #left: number;
  #state: "data" | "size" | "done" = "data";
  /** True once the whole body was read. */
  get done(): boolean {
    return this.#state === "done";
  }

  constructor(
    private readonly buf: BufReader,
    private readonly framing: Framing,
    private readonly idleMs: number,
  ) {
    this.#left = framing.kind === "length" ? framing.length : 0;
    if (framing.kind === "none" || (framing.kind === "length" && framing.length === 0)) {
      this.#state = "done";
    }
    if (framing.kind === "chunked") this.#state = "size";
  }

  /** The next piece, or null at the end of the body. */
  async next(): Promise<Uint8Array | null> {
    const { buf, idleMs } = this;
    switch (this.framing.kind) {
      case "none":
        return null;
      case "close": {
        const b = await buf.read(READ_MAX, idleMs);
        if (!b) this.#state = "done";
        return b;
      }
      case "length": {
        if (this.#left === 0) return null;
        const b = await buf.read(Math.min(READ_MAX, this.#left), idleMs);
        if (!b) throw new HttpParseError("connection closed inside a body");
        this.#left -= b.length;
        if (this.#left === 0) this.#state = "done";
        return b;
      }
      case "chunked": {
        if (this.#state === "done") return null;
        if (this.#state === "size") {
          const line = await buf.readLine(MAX_CHUNK_LINE, idleMs);
          const m = /^([0-9a-fA-F]{1,12})(?:\s*;.*)?$/.exec(line.trim());
          if (!m) {
            throw new HttpParseError(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`);
          }
          this.#left = parseInt(m[1], 16);
          if (this.#left === 0) {
            // Trailers are read and dropped.
            for (let i = 0; i < 100; i++) {
              if ((await buf.readLine(MAX_CHUNK_LINE, idleMs)) === "") break;
            }
            this.#state = "done";
            return null;
          }
          this.#state = "data";
        }
        const b = await buf.read(Math.min(READ_MAX, this.#left), idleMs);
        if (!b) throw new HttpParseError("connection closed inside a chunk");
        this.#left -= b.length;
        if (this.#left === 0) {
          if ((await buf.readLine(MAX_CHUNK_LINE, idleMs)) !== "") {
            throw new HttpParseError("chunk not followed by CRLF");
          }
          this.#state = "size";
        }
        return b;
      }
    }
  }
}

const CRLF = new Uint8Array([13, 10]);
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");

/** Writes a body with the given framing ("chunked" encodes; others copy bytes). */
export async function writeBodyPiece(to: Wire, chunked: boolean, piece: Uint8Array): Promise<void> {
  if (!chunked) return await to.write(piece);
  if (piece.length === 0) return;
  const size = new TextEncoder().encode(piece.length.toString(16) + "\r\n");
  const out = new Uint8Array(size.length + piece.length + 2);
  out.set(size);
  out.set(piece, size.length);
  out.set(CRLF, size.length + piece.length);
  await to.write(out);
}

export async function endBody(to: Wire, chunked: boolean): Promise<void> {
  if (chunked) await to.write(LAST_CHUNK);
}

export function reasonPhrase(status: number): string {
  return ({
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
  } as Record<number, string>)[status] ?? "Status";
}
