/**
 * The dial-back protocol `/edgemesh/dialback/1.0.0` on the wire:
 *
 *   message = version:u8 (1) | type:u8 | length:u8 | body (≤ MAX_DIALBACK_BODY bytes)
 *   REQUEST (1) asker → helper, on a connection they share:
 *               nonce:16 | count:u8 (1..MAX_DIALBACK_ADDRS) | addr…  (the asker's listen addresses)
 *   RESULT  (2) helper → asker, same stream: status:u8 | outside:u8 (0/1) | addr (what was dialled;
 *               family 0 when nothing was)
 *   PROVE   (3) helper → asker, on the NEW connection: nonce:16
 *   PROVED  (4) asker → helper, same stream: empty
 *   addr    = family:u8 (4) | ip:4 bytes | port:u16   or   family:u8 (0) (none)
 *
 * Every length is bounded; anything else is a WireError and the stream is reset.
 */

import { WireError } from "./errors.ts";

export const DIALBACK_PROTOCOL = "/edgemesh/dialback/1.0.0";
export const DIALBACK_VERSION = 1;
export const MAX_DIALBACK_BODY = 96;
export const MAX_DIALBACK_ADDRS = 8;
export const NONCE_BYTES = 16;

export const DialbackType = { request: 1, result: 2, prove: 3, proved: 4 } as const;

/** RESULT statuses: the helper connected and proved it, tried and failed, or did not try. */
export const DIALBACK_STATUSES = ["", "ok", "failed", "refused", "no-address"] as const;
export type DialbackStatus = Exclude<typeof DIALBACK_STATUSES[number], "">;

export interface DialbackAddr {
  ip: string;
  port: number;
}

export type DialbackMessage =
  | { type: "request"; nonce: Uint8Array; addrs: DialbackAddr[] }
  | { type: "result"; status: DialbackStatus; outside: boolean; addr?: DialbackAddr }
  | { type: "prove"; nonce: Uint8Array }
  | { type: "proved" };

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(ip: string): boolean {
  return IPV4.test(ip);
}

function encodeAddr(a: DialbackAddr | undefined, out: number[]): void {
  if (!a) {
    out.push(0);
    return;
  }
  if (!IPV4.test(a.ip)) throw new WireError(`dial-back address "${a.ip}" is not IPv4`);
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) {
    throw new WireError(`dial-back port ${a.port} out of range`);
  }
  out.push(4, ...a.ip.split(".").map(Number), a.port >> 8, a.port & 0xff);
}

function decodeAddr(b: Uint8Array, o: number): [DialbackAddr | undefined, number] {
  if (b.length < o + 1) throw new WireError("dial-back address truncated");
  if (b[o] === 0) return [undefined, o + 1];
  if (b[o] !== 4) throw new WireError(`dial-back address family ${b[o]} unknown`);
  if (b.length < o + 7) throw new WireError("dial-back address truncated");
  const port = (b[o + 5] << 8) | b[o + 6];
  if (port === 0) throw new WireError("dial-back port 0");
  return [{ ip: Array.from(b.subarray(o + 1, o + 5)).join("."), port }, o + 7];
}

function nonceOf(body: Uint8Array): Uint8Array {
  if (body.length < NONCE_BYTES) throw new WireError("dial-back nonce truncated");
  return body.slice(0, NONCE_BYTES);
}

export function encodeDialback(m: DialbackMessage): Uint8Array {
  const body: number[] = [];
  switch (m.type) {
    case "request": {
      if (m.nonce.length !== NONCE_BYTES) throw new WireError("dial-back nonce must be 16 bytes");
      if (m.addrs.length < 1 || m.addrs.length > MAX_DIALBACK_ADDRS) {
        throw new WireError(`dial-back request needs 1..${MAX_DIALBACK_ADDRS} addresses`);
      }
      body.push(...m.nonce, m.addrs.length);
      for (const a of m.addrs) encodeAddr(a, body);
      break;
    }
    case "result":
      body.push(DIALBACK_STATUSES.indexOf(m.status), m.outside ? 1 : 0);
      encodeAddr(m.addr, body);
      break;
    case "prove":
      if (m.nonce.length !== NONCE_BYTES) throw new WireError("dial-back nonce must be 16 bytes");
      body.push(...m.nonce);
      break;
    case "proved":
      break;
  }
  return Uint8Array.from([DIALBACK_VERSION, DialbackType[m.type], body.length, ...body]);
}

/** Decodes one message from its 3-byte head and body (read separately by the caller). */
export function decodeDialback(head: Uint8Array, body: Uint8Array): DialbackMessage {
  if (head[0] !== DIALBACK_VERSION) throw new WireError(`dial-back version ${head[0]} unknown`);
  if (head[2] !== body.length || body.length > MAX_DIALBACK_BODY) {
    throw new WireError("dial-back length mismatch");
  }
  switch (head[1]) {
    case DialbackType.request: {
      const nonce = nonceOf(body);
      const count = body[NONCE_BYTES];
      if (!count || count > MAX_DIALBACK_ADDRS) throw new WireError("dial-back address count");
      const addrs: DialbackAddr[] = [];
      let o = NONCE_BYTES + 1;
      for (let i = 0; i < count; i++) {
        const [a, next] = decodeAddr(body, o);
        if (!a) throw new WireError("dial-back request with an empty address");
        addrs.push(a);
        o = next;
      }
      if (o !== body.length) throw new WireError("dial-back request has trailing bytes");
      return { type: "request", nonce, addrs };
    }
    case DialbackType.result: {
      if (body.length < 3) throw new WireError("dial-back result truncated");
      const status = DIALBACK_STATUSES[body[0]];
      if (!status) throw new WireError(`dial-back status ${body[0]} unknown`);
      if (body[1] > 1) throw new WireError("dial-back outside flag");
      const [addr, o] = decodeAddr(body, 2);
      if (o !== body.length) throw new WireError("dial-back result has trailing bytes");
      return { type: "result", status, outside: body[1] === 1, ...(addr ? { addr } : {}) };
    }
    case DialbackType.prove:
      if (body.length !== NONCE_BYTES) throw new WireError("dial-back prove length");
      return { type: "prove", nonce: nonceOf(body) };
    case DialbackType.proved:
      if (body.length !== 0) throw new WireError("dial-back proved length");
      return { type: "proved" };
    default:
      throw new WireError(`dial-back message type ${head[1]} unknown`);
  }
}

/** Reads one message with a bounded body. */
export async function readDialback(
  readExactly: (n: number) => Promise<Uint8Array>,
): Promise<DialbackMessage> {
  const head = await readExactly(3);
  if (head[2] > MAX_DIALBACK_BODY) throw new WireError("dial-back message too long");
  const body = head[2] ? await readExactly(head[2]) : new Uint8Array(0);
  return decodeDialback(head, body);
}
