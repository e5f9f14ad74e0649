/** Reads the server name (SNI) from a TLS ClientHello without consuming the connection. */

import type { BufReader } from "./buf_reader.ts";

export class NotTlsError extends Error {
  override name = "NotTlsError";
}

/**
 * Result of parsing the first TLS record: "more" when the record is incomplete, else the
 * SNI host name ("" when the client sent none). Throws NotTlsError for anything else.
 */
export function parseClientHello(data: Uint8Array): string | "more" {
  if (data.length < 5) return "more";
  if (data[0] !== 22 || data[1] !== 3) throw new NotTlsError("not a TLS handshake record");
  const recLen = (data[3] << 8) | data[4];
  if (data.length < 5 + recLen) return "more";
  const b = data.subarray(5, 5 + recLen);
  let p = 0;
  const need = (n: number) => {
    if (p + n > b.length) throw new NotTlsError("truncated ClientHello");
  };
  need(4);
  if (b[0] !== 1) throw new NotTlsError("first handshake message is not a ClientHello");
  p = 4 + 2 + 32; // header, client_version, random
  need(1);
  p += 1 + b[p]; // session id
  need(2);
  p += 2 + ((b[p] << 8) | b[p + 1]); // cipher suites
  need(1);
  p += 1 + b[p]; // compression methods
  if (p === b.length) return "";
  need(2);
  const extEnd = p + 2 + ((b[p] << 8) | b[p + 1]);
  p += 2;
  while (p + 4 <= Math.min(extEnd, b.length)) {
    const type = (b[p] << 8) | b[p + 1];
    const len = (b[p + 2] << 8) | b[p + 3];
    p += 4;
    need(len);
    if (type === 0) {
      let q = p + 2;
      const end = p + len;
      while (q + 3 <= end) {
        const nameType = b[q];
        const nameLen = (b[q + 1] << 8) | b[q + 2];
        q += 3;
        if (q + nameLen > end) throw new NotTlsError("truncated server_name");
        if (nameType === 0) {
          return new TextDecoder().decode(b.subarray(q, q + nameLen)).toLowerCase();
        }
        q += nameLen;
      }
      return "";
    }
    p += len;
  }
  return "";
}

/** Buffers the ClientHello (leaving the bytes in `buf`), returning its SNI. */
export async function peekSni(
  buf: BufReader,
  timeoutMs: number,
  maxBytes = 16 * 1024 + 5,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = parseClientHello(buf.peek());
    if (r !== "more") return r;
    if (buf.buffered >= maxBytes) throw new NotTlsError("ClientHello too large");
    const left = deadline - Date.now();
    if (left <= 0) throw new DOMException(`no ClientHello within ${timeoutMs} ms`, "TimeoutError");
    if (!(await buf.fillMore(left))) {
      throw new NotTlsError("connection closed before a ClientHello");
    }
  }
}
