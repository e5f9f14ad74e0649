/**
 * Just enough HTTP/1.1 to balance on request data: read the request head (nothing more) and
 * expose its headers, cookies and query parameters. Bodies are handled by `http_session.ts`
 * when each request is balanced on its own; otherwise the connection is spliced after the head.
 */

import type { PickRequest } from "../lb/mod.ts";
import type { Duplex } from "./duplex.ts";
import { HttpHeadError } from "./errors.ts";

const decoder = new TextDecoder();

export interface RequestHead {
  method: string;
  target: string;
  version: string;
  /** Lower-cased names; repeated headers keep every value. */
  headers: Map<string, string[]>;
}

/** Index just past the first CRLFCRLF at or after `from`, or -1. */
export function headEnd(buf: Uint8Array, length: number, from = 0): number {
  for (let i = Math.max(0, from); i + 3 < length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i + 4;
  }
  return -1;
}

export interface ReadHeadResult {
  /** Every byte read so far (head and possibly the start of the body). */
  bytes: Uint8Array;
  /** Parsed head, or undefined when the stream does not look like HTTP/1.x. */
  head?: RequestHead;
}

/**
 * Reads until the end of the request head. Streams that do not start like an HTTP request
 * are returned unparsed after the first read, so opaque TCP still works on such ports.
 */
export async function readRequestHead(
  conn: Duplex,
  buf: Uint8Array,
  timeoutMs: number,
): Promise<ReadHeadResult> {
  let len = 0;
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    for (;;) {
      if (len === buf.length) {
        throw new HttpHeadError("too_large", `HTTP request head exceeds ${buf.length} bytes`);
      }
      let n: number | null;
      try {
        n = await conn.read(buf.subarray(len));
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          throw new HttpHeadError(
            "timeout",
            `no complete HTTP request head within ${timeoutMs} ms`,
          );
        }
        throw err;
      }
      if (n === null) {
        if (len === 0) throw new HttpHeadError("closed", "client closed before sending a request");
        return { bytes: buf.slice(0, len) };
      }
      const from = Math.max(0, len - 3);
      len += n;
      if (!looksLikeHttp(buf, len)) return { bytes: buf.slice(0, len) };
      const end = headEnd(buf, len, from);
      if (end >= 0) {
        return {
          bytes: buf.slice(0, len),
          head: parseRequestHead(decoder.decode(buf.subarray(0, end))),
        };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A request line starts with an upper-case token and a space. */
function looksLikeHttp(buf: Uint8Array, len: number): boolean {
  for (let i = 0; i < Math.min(len, 16); i++) {
    const c = buf[i];
    if (c === 32) return i > 0;
    if (c < 65 || c > 90) return false;
  }
  return len < 16;
}

export function parseRequestHead(text: string): RequestHead {
  const lines = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0]);
  if (!m) {
    throw new HttpHeadError(
      "malformed",
      `bad HTTP request line: ${JSON.stringify(lines[0].slice(0, 80))}`,
    );
  }
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const c = line.indexOf(":");
    if (c <= 0) continue;
    const name = line.slice(0, c).trim().toLowerCase();
    const value = line.slice(c + 1).trim();
    const arr = headers.get(name);
    if (arr) arr.push(value);
    else headers.set(name, [value]);
  }
  return { method: m[1], target: m[2], version: m[3], headers };
}

/** The look-ups a balancer may ask for. */
export function pickRequestFor(head: RequestHead, clientIp: string): PickRequest {
  let cookies: Map<string, string> | undefined;
  let query: URLSearchParams | undefined;
  return {
    clientIp,
    header: (name) => head.headers.get(name.toLowerCase())?.join(","),
    cookie: (name) => {
      if (!cookies) {
        cookies = new Map();
        for (const h of head.headers.get("cookie") ?? []) {
          for (const part of h.split(";")) {
            const eq = part.indexOf("=");
            if (eq > 0) {
              const k = part.slice(0, eq).trim();
              if (!cookies.has(k)) cookies.set(k, part.slice(eq + 1).trim());
            }
          }
        }
      }
      return cookies.get(name);
    },
    query: (name) => {
      if (!query) {
        const q = head.target.indexOf("?");
        query = new URLSearchParams(q >= 0 ? head.target.slice(q + 1) : "");
      }
      return query.get(name) ?? undefined;
    },
  };
}
