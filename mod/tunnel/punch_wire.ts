/**
 * The hole-punch protocol `/edgemesh/punch/1.0.0`, spoken over an existing connection:
 *
 *   message  = version:u8 (1) | type:u8 | length:u8 | body (≤ MAX_PUNCH_BODY bytes)
 *   OBSERVE  (1) body empty             → OBSERVED (2) body = addr: the address the answering
 *                                          peer sees this connection come from
 *   CONNECT  (3) body = addrs           → CONNECT (3) with the responder's addrs, or REFUSE
 *   PING     (4) body empty             → PONG (5) body empty (the initiator's RTT sample)
 *   SYNC     (6) body empty             : both sides start their simultaneous-open burst
 *   REFUSE   (7) body = reason:u8       (1 disabled, 2 busy, 3 no address)
 *   addrs    = count:u8 (1..MAX_PUNCH_ADDRS) | addr…
 *   addr     = family:u8 (4) | ip:4 bytes | port:u16
 *
 * Every length is bounded; anything else is a WireError and the stream is reset.
 */

import { WireError } from "./errors.ts";

export const PUNCH_PROTOCOL = "/edgemesh/punch/1.0.0";
export const PUNCH_VERSION = 1;
export const MAX_PUNCH_BODY = 64;
export const MAX_PUNCH_ADDRS = 4;

export const PunchType = {
  observe: 1,
  observed: 2,
  connect: 3,
  ping: 4,
  pong: 5,
  sync: 6,
  refuse: 7,
} as const;
export type PunchTypeName = keyof typeof PunchType;

export const REFUSE_REASONS = ["", "disabled", "busy", "no-address"] as const;
export type RefuseReason = Exclude<typeof REFUSE_REASONS[number], "">;

export interface PunchAddr {
  ip: string;
  port: number;
}

export type PunchMessage =
  | { type: "observe" | "ping" | "pong" | "sync" }
  | { type: "observed"; addr: PunchAddr }
  | { type: "connect"; addrs: PunchAddr[] }
  | { type: "refuse"; reason: RefuseReason };

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function encodeAddr(a: PunchAddr, out: number[]): void {
  if (!IPV4.test(a.ip)) throw new WireError(`punch address "${a.ip}" is not IPv4`);
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) {
    throw new WireError(`punch port ${a.port} out of range`);
  }
  out.push(4, ...a.ip.split(".").map(Number), a.port >> 8, a.port & 0xff);
}

function decodeAddr(b: Uint8Array, o: number): PunchAddr {
  if (b.length < o + 7) throw new WireError("punch address truncated");
  if (b[o] !== 4) throw new WireError(`unknown punch address family ${b[o]}`);
  const port = (b[o + 5] << 8) | b[o + 6];
  if (port === 0) throw new WireError("punch port 0");
  return { ip: `${b[o + 1]}.${b[o + 2]}.${b[o + 3]}.${b[o + 4]}`, port };
}

export function encodePunch(m: PunchMessage): Uint8Array {
  const body: number[] = [];
  switch (m.type) {
    case "observed":
      encodeAddr(m.addr, body);
      break;
    case "connect":
      if (m.addrs.length < 1 || m.addrs.length > MAX_PUNCH_ADDRS) {
        throw new WireError(`punch message with ${m.addrs.length} addresses`);
      }
      body.push(m.addrs.length);
      for (const a of m.addrs) encodeAddr(a, body);
      break;
    case "refuse":
      body.push(REFUSE_REASONS.indexOf(m.reason));
      break;
  }
  return new Uint8Array([PUNCH_VERSION, PunchType[m.type], body.length, ...body]);
}

/** Checks the 3-byte prefix; returns the message type number and the body length. */
export function decodePunchPrefix(p: Uint8Array): { type: number; len: number } {
  if (p.length < 3) throw new WireError("punch prefix truncated");
  if (p[0] !== PUNCH_VERSION) throw new WireError(`unsupported punch protocol version ${p[0]}`);
  if (p[1] < 1 || p[1] > 7) throw new WireError(`unknown punch message type ${p[1]}`);
  if (p[2] > MAX_PUNCH_BODY) throw new WireError(`punch body of ${p[2]} bytes too large`);
  return { type: p[1], len: p[2] };
}

export function decodePunchBody(type: number, b: Uint8Array): PunchMessage {
  switch (type) {
    case PunchType.observe:
    case PunchType.ping:
    case PunchType.pong:
    case PunchType.sync: {
      if (b.length !== 0) throw new WireError(`punch message ${type} carries a body`);
      const name = (Object.keys(PunchType) as PunchTypeName[]).find((k) => PunchType[k] === type)!;
      return { type: name as "observe" };
    }
    case PunchType.observed:
      if (b.length !== 7) throw new WireError("observed address of the wrong size");
      return { type: "observed", addr: decodeAddr(b, 0) };
    case PunchType.connect: {
      const n = b[0];
      if (!n || n > MAX_PUNCH_ADDRS) throw new WireError(`punch message with ${n ?? 0} addresses`);
      if (b.length !== 1 + 7 * n) throw new WireError("punch address list lengths do not add up");
      const addrs: PunchAddr[] = [];
      for (let i = 0; i < n; i++) addrs.push(decodeAddr(b, 1 + 7 * i));
      return { type: "connect", addrs };
    }
    case PunchType.refuse: {
      const reason = REFUSE_REASONS[b[0]];
      if (b.length !== 1 || !reason) throw new WireError(`unknown punch refusal ${b[0]}`);
      return { type: "refuse", reason };
    }
    default:
      throw new WireError(`unknown punch message type ${type}`);
  }
}

/** Decodes one whole message (tests, and readers that already hold the bytes). */
export function decodePunch(b: Uint8Array): PunchMessage {
  const { type, len } = decodePunchPrefix(b);
  if (b.length !== 3 + len) throw new WireError("punch message length does not match");
  return decodePunchBody(type, b.subarray(3));
}
