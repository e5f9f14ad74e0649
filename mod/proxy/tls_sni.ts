/** Reads the TLS ClientHello far enough to learn the SNI host name, without terminating TLS. */

import type { Duplex } from "./duplex.ts";

export interface ClientHelloResult {
  bytes: Uint8Array;
  /** Lower-cased server name, when the stream is TLS and names one. */
  sni?: string;
}

/** Reads the first TLS record (bounded by `buf`), then returns what it read and the SNI. */
export async function readClientHello(
  conn: Duplex,
  buf: Uint8Array,
  timeoutMs: number,
): Promise<ClientHelloResult> {
  let len = 0;
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    for (;;) {
      const n = await conn.read(buf.subarray(len));
      if (n === null) return { bytes: buf.slice(0, len) };
      len += n;
      if (buf[0] !== 0x16) return { bytes: buf.slice(0, len) }; // not a TLS handshake
      if (len >= 5) {
        const need = 5 + ((buf[3] << 8) | buf[4]);
        if (len >= need || len === buf.length) {
          return { bytes: buf.slice(0, len), sni: parseSni(buf.subarray(5, Math.min(len, need))) };
        }
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.BadResource) return { bytes: buf.slice(0, len) };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Parses the server_name extension of a ClientHello handshake message. */
export function parseSni(h: Uint8Array): string | undefined {
  const u16 = (i: number) => (h[i] << 8) | h[i + 1];
  if (h.length < 4 || h[0] !== 1) return undefined;
  let i = 4 + 2 + 32; // handshake header, client version, random
  if (i >= h.length) return undefined;
  i += 1 + h[i]; // session id
  if (i + 2 > h.length) return undefined;
  i += 2 + u16(i); // cipher suites
  if (i >= h.length) return undefined;
  i += 1 + h[i]; // compression methods
  if (i + 2 > h.length) return undefined;
  const extEnd = Math.min(h.length, i + 2 + u16(i));
  i += 2;
  while (i + 4 <= extEnd) {
    const type = u16(i);
    const size = u16(i + 2);
    i += 4;
    if (type === 0 && i + 5 <= extEnd) {
      let j = i + 2; // server name list length
      const listEnd = Math.min(extEnd, i + size);
      while (j + 3 <= listEnd) {
        const nameType = h[j];
        const nameLen = u16(j + 1);
        j += 3;
        if (nameType === 0 && j + nameLen <= listEnd) {
          return new TextDecoder().decode(h.subarray(j, j + nameLen)).toLowerCase();
        }
        j += nameLen;
      }
      return undefined;
    }
    i += size;
  }
  return undefined;
}
