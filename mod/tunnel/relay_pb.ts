/**
 * The few circuit relay v2 protobuf messages our relay server speaks (HopMessage and
 * StopMessage of libp2p's circuit v2 spec), hand-encoded: unsigned-varint length prefix, then
 * fields as varints (wire type 0) or bytes (wire type 2).
 */

import { WireError } from "./errors.ts";

export const HOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/hop";
export const STOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/stop";
export const MAX_RELAY_MESSAGE = 4096;

export const HopType = { RESERVE: 0, CONNECT: 1, STATUS: 2 } as const;
export const StopType = { CONNECT: 0, STATUS: 1 } as const;
export const RelayStatus = {
  OK: 100,
  RESERVATION_REFUSED: 200,
  RESOURCE_LIMIT_EXCEEDED: 201,
  PERMISSION_DENIED: 202,
  CONNECTION_FAILED: 203,
  NO_RESERVATION: 204,
  MALFORMED_MESSAGE: 400,
  UNEXPECTED_MESSAGE: 401,
} as const;

class Writer {
  parts: number[] = [];
  varint(v: number): this {
    let n = v;
    while (n >= 0x80) {
      this.parts.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.parts.push(n);
    return this;
  }
  field(num: number, v: number): this {
    return this.varint(num << 3).varint(v);
  }
  bytes(num: number, b: Uint8Array): this {
    this.varint((num << 3) | 2).varint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** Unsigned-varint length prefix + body. */
export function frame(body: Uint8Array): Uint8Array {
  const len = new Writer().varint(body.length).done();
  const out = new Uint8Array(len.length + body.length);
  out.set(len);
  out.set(body, len.length);
  return out;
}

function peer(id: Uint8Array, addrs: Uint8Array[]): Uint8Array {
  const w = new Writer().bytes(1, id);
  for (const a of addrs) w.bytes(2, a);
  return w.done();
}

/** HopMessage{type: STATUS, status, reservation?} */
export function hopStatus(
  status: number,
  reservation?: { expireSec: number; addrs: Uint8Array[] },
): Uint8Array {
  const w = new Writer().field(1, HopType.STATUS);
  if (reservation) {
    const r = new Writer().field(1, reservation.expireSec);
    for (const a of reservation.addrs) r.bytes(2, a);
    w.bytes(3, r.done());
  }
  w.field(5, status);
  return frame(w.done());
}

/** StopMessage{type: CONNECT, peer{id, addrs: []}} */
export function stopConnect(srcPeerMultihash: Uint8Array): Uint8Array {
  return frame(new Writer().field(1, StopType.CONNECT).bytes(2, peer(srcPeerMultihash, [])).done());
}

export interface Fields {
  varints: Map<number, number>;
  bytes: Map<number, Uint8Array[]>;
}

export function decodeFields(b: Uint8Array): Fields {
  const out: Fields = { varints: new Map(), bytes: new Map() };
  let o = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (o >= b.length) throw new WireError("truncated varint");
      const x = b[o++];
      v += (x & 0x7f) * mul;
      if (x < 0x80) return v;
      mul *= 0x80;
    }
    throw new WireError("varint too long");
  };
  while (o < b.length) {
    const tag = varint();
    const num = Math.floor(tag / 8);
    const type = tag & 7;
    if (type === 0) out.varints.set(num, varint());
    else if (type === 2) {
      const len = varint();
      if (o + len > b.length) throw new WireError("truncated field");
      const list = out.bytes.get(num) ?? [];
      list.push(b.subarray(o, o + len));
      out.bytes.set(num, list);
      o += len;
    } else throw new WireError(`unsupported wire type ${type}`);
  }
  return out;
}

/** Reads one length-prefixed message with the given reader function. */
export async function readMessage(
  readExactly: (n: number) => Promise<Uint8Array>,
): Promise<Fields> {
  let len = 0;
  let mul = 1;
  for (let i = 0;; i++) {
    if (i >= 3) throw new WireError("relay message length too long");
    const x = (await readExactly(1))[0];
    len += (x & 0x7f) * mul;
    if (x < 0x80) break;
    mul *= 0x80;
  }
  if (len > MAX_RELAY_MESSAGE) throw new WireError(`relay message of ${len} bytes too large`);
  return decodeFields(await readExactly(len));
}
