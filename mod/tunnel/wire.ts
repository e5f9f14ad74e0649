/**
 * The proxy protocol `/edgemesh/proxy/1.0.0`:
 *
 *   request  = version:u8 (1) | length:u16 | header
 *   header   = protocol:u8 (1 tcp, 2 udp) | port:u16 | ipLen:u8 | ip | srcLen:u8 | sourceNode
 *   reply    = version:u8 (1) | code:u8 (ReplyCode)
 *   then raw bytes (tcp) or datagrams framed as length:u16 | payload (udp).
 *
 * Every length is bounded; anything else is a WireError and the stream is reset.
 */

import type { DialErrorCode } from "../contracts/mod.ts";
import { WireError } from "./errors.ts";

export const PROXY_PROTOCOL = "/edgemesh/proxy/1.0.0";
export const WIRE_VERSION = 1;
export const MAX_HEADER_BYTES = 512;
export const MAX_DATAGRAM_BYTES = 65_535;

export interface ProxyHeader {
  protocol: "tcp" | "udp";
  ip: string;
  port: number;
  sourceNode: string;
}

/** Reply codes; 0 is success, the rest map onto DialError codes. */
export const REPLY_CODES = [
  "ok",
  "forbidden",
  "refused",
  "unreachable",
  "timeout",
  "protocol",
] as const;
export type ReplyCode = typeof REPLY_CODES[number];

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function encodeRequest(h: ProxyHeader): Uint8Array {
  const ip = enc.encode(h.ip);
  const src = enc.encode(h.sourceNode);
  if (ip.length > 64 || src.length > 253) throw new WireError("header field too long");
  const len = 1 + 2 + 1 + ip.length + 1 + src.length;
  const out = new Uint8Array(3 + len);
  const dv = new DataView(out.buffer);
  out[0] = WIRE_VERSION;
  dv.setUint16(1, len);
  out[3] = h.protocol === "tcp" ? 1 : 2;
  dv.setUint16(4, h.port);
  out[6] = ip.length;
  out.set(ip, 7);
  out[7 + ip.length] = src.length;
  out.set(src, 8 + ip.length);
  return out;
}

/** Checks the 3-byte prefix and returns the header length that follows. */
export function decodeRequestPrefix(p: Uint8Array): number {
  if (p[0] !== WIRE_VERSION) throw new WireError(`unsupported proxy protocol version ${p[0]}`);
  const len = (p[1] << 8) | p[2];
  if (len < 6 || len > MAX_HEADER_BYTES) throw new WireError(`header length ${len} out of bounds`);
  return len;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:.]{2,45}$/;

export function decodeHeader(b: Uint8Array): ProxyHeader {
  try {
    const proto = b[0];
    if (proto !== 1 && proto !== 2) throw new WireError(`unknown protocol ${proto}`);
    const port = (b[1] << 8) | b[2];
    const ipLen = b[3];
    const ip = dec.decode(b.subarray(4, 4 + ipLen));
    const srcLen = b[4 + ipLen];
    if (5 + ipLen + srcLen !== b.length) throw new WireError("header lengths do not add up");
    const sourceNode = dec.decode(b.subarray(5 + ipLen, 5 + ipLen + srcLen));
    if (port === 0) throw new WireError("port 0");
    if (!IPV4.test(ip) && !(ip.includes(":") && IPV6.test(ip))) {
      throw new WireError(`bad ip "${ip}"`);
    }
    return { protocol: proto === 1 ? "tcp" : "udp", ip, port, sourceNode };
  } catch (err) {
    if (err instanceof WireError) throw err;
    throw new WireError("malformed header", { cause: err });
  }
}

export function encodeReply(code: ReplyCode): Uint8Array {
  return new Uint8Array([WIRE_VERSION, REPLY_CODES.indexOf(code)]);
}

export function decodeReply(b: Uint8Array): ReplyCode {
  if (b[0] !== WIRE_VERSION) throw new WireError(`unsupported reply version ${b[0]}`);
  const code = REPLY_CODES[b[1]];
  if (code === undefined) throw new WireError(`unknown reply code ${b[1]}`);
  return code;
}

/** The DialError code for a non-ok reply. */
export function replyToDialCode(code: Exclude<ReplyCode, "ok">): DialErrorCode {
  return code;
}

/** Maps a failure to dial the target into a reply code. */
export function errorToReply(err: unknown): ReplyCode {
  if (err instanceof Deno.errors.ConnectionRefused) return "refused";
  if (err instanceof Deno.errors.TimedOut) return "timeout";
  if (err instanceof DOMException && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return "timeout";
  }
  return "unreachable";
}

/** Writes the 2-byte frame length for a datagram into `out` (length must be ≤ 65,535). */
export function frameHeader(len: number): Uint8Array {
  if (len > MAX_DATAGRAM_BYTES) throw new WireError(`datagram of ${len} bytes too large`);
  return new Uint8Array([len >> 8, len & 0xff]);
}
