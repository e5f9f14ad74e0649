/**
 * Wire format of health messages (binary, big-endian, version byte first).
 *
 * Digest (one node's signed verdicts on its whole group, aligned with the sorted members):
 *   u8 version=1 | u8 type=1 | u8 len + from | u8 len + group | f64 seq | f64 ts (ms) |
 *   8 bytes group hash | u32 n | ceil(n/4) bytes of 2-bit states (0 none, 1 ok, 2 fail) |
 *   n × u16 age before ts in 100 ms units | 32 bytes Ed25519 public key | 64 bytes signature
 * The signature covers every byte before it. About 2.25 bytes per member plus ~130 bytes.
 *
 * Exchange (POST /v1/exchange body, and its reply):
 *   u8 version=1 | u8 type=2 (request) or 3 (reply) | 8 bytes group hash | u32 n |
 *   n × f64 latest seq held per member (0 = none) | u32 count | count × (u32 len + digest)
 */

import { WireFormatError } from "./errors.ts";
import { NONE } from "./vote.ts";

export const WIRE_VERSION = 1;
export const TYPE_DIGEST = 1;
export const TYPE_EXCHANGE = 2;
export const TYPE_EXCHANGE_REPLY = 3;
export const MAX_MEMBERS = 65_536;
const AGE_UNIT_MS = 100;
const AGE_MAX = 0xffff;
const SIG_LEN = 64;
const KEY_LEN = 32;

export interface DigestBody {
  from: string;
  group: string;
  seq: number;
  ts: number;
  groupHash: Uint8Array;
  states: Uint8Array;
  /** ms; ignored where the state is none. */
  observedAt: Float64Array;
  publicKey: Uint8Array;
}

export interface Digest extends DigestBody {
  signature: Uint8Array;
  /** The bytes the signature covers. */
  signed: Uint8Array;
  /** The whole message, for relaying. */
  raw: Uint8Array;
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function encodeDigestBody(d: DigestBody): Uint8Array {
  const from = enc.encode(d.from);
  const group = enc.encode(d.group);
  const n = d.states.length;
  if (from.length > 255 || group.length > 255) {
    throw new WireFormatError("name longer than 255 bytes");
  }
  if (d.groupHash.length !== 8 || d.publicKey.length !== KEY_LEN) {
    throw new WireFormatError("bad hash or key length");
  }
  const packed = Math.ceil(n / 4);
  const size = 2 + 1 + from.length + 1 + group.length + 16 + 8 + 4 + packed + 2 * n + KEY_LEN;
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  let o = 0;
  buf[o++] = WIRE_VERSION;
  buf[o++] = TYPE_DIGEST;
  buf[o++] = from.length;
  buf.set(from, o);
  o += from.length;
  buf[o++] = group.length;
  buf.set(group, o);
  o += group.length;
  dv.setFloat64(o, d.seq);
  dv.setFloat64(o + 8, d.ts);
  o += 16;
  buf.set(d.groupHash, o);
  o += 8;
  dv.setUint32(o, n);
  o += 4;
  for (let i = 0; i < n; i++) buf[o + (i >> 2)] |= (d.states[i] & 3) << ((i & 3) * 2);
  o += packed;
  for (let i = 0; i < n; i++) {
    let age = AGE_MAX;
    if (d.states[i] !== NONE) {
      age = Math.min(AGE_MAX - 1, Math.max(0, Math.ceil((d.ts - d.observedAt[i]) / AGE_UNIT_MS)));
    }
    dv.setUint16(o + 2 * i, age);
  }
  o += 2 * n;
  buf.set(d.publicKey, o);
  return buf;
}

/** Appends the signature to an encoded body. */
export function withSignature(body: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length !== SIG_LEN) {
    throw new WireFormatError(`signature of ${signature.length} bytes`);
  }
  const out = new Uint8Array(body.length + SIG_LEN);
  out.set(body);
  out.set(signature, body.length);
  return out;
}

export function decodeDigest(raw: Uint8Array): Digest {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let o = 0;
  const need = (k: number) => {
    if (o + k > raw.length) throw new WireFormatError(`truncated at byte ${o} of ${raw.length}`);
  };
  need(3);
  if (raw[0] !== WIRE_VERSION) throw new WireFormatError(`unsupported version ${raw[0]}`);
  if (raw[1] !== TYPE_DIGEST) throw new WireFormatError(`type ${raw[1]} is not a digest`);
  o = 2;
  const str = () => {
    need(1);
    const len = raw[o++];
    need(len);
    let s: string;
    try {
      s = dec.decode(raw.subarray(o, o + len));
    } catch {
      throw new WireFormatError("name is not UTF-8");
    }
    o += len;
    return s;
  };
  const from = str();
  const group = str();
  need(16 + 8 + 4);
  const seq = dv.getFloat64(o);
  const ts = dv.getFloat64(o + 8);
  o += 16;
  if (!Number.isSafeInteger(seq) || seq <= 0 || !Number.isFinite(ts)) {
    throw new WireFormatError("bad seq or ts");
  }
  const groupHash = raw.slice(o, o + 8);
  o += 8;
  const n = dv.getUint32(o);
  o += 4;
  if (n > MAX_MEMBERS) throw new WireFormatError(`${n} members`);
  const packed = Math.ceil(n / 4);
  need(packed + 2 * n + KEY_LEN + SIG_LEN);
  const states = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const s = (raw[o + (i >> 2)] >> ((i & 3) * 2)) & 3;
    if (s === 3) throw new WireFormatError(`state 3 for member ${i}`);
    states[i] = s;
  }
  o += packed;
  const observedAt = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const age = dv.getUint16(o + 2 * i);
    if (age === AGE_MAX) states[i] = NONE;
    else observedAt[i] = ts - age * AGE_UNIT_MS;
  }
  o += 2 * n;
  const publicKey = raw.slice(o, o + KEY_LEN);
  o += KEY_LEN;
  const signed = raw.subarray(0, o);
  const signature = raw.slice(o, o + SIG_LEN);
  o += SIG_LEN;
  if (o !== raw.length) throw new WireFormatError(`${raw.length - o} trailing bytes`);
  return { from, group, seq, ts, groupHash, states, observedAt, publicKey, signature, signed, raw };
}

export interface Exchange {
  type: typeof TYPE_EXCHANGE | typeof TYPE_EXCHANGE_REPLY;
  groupHash: Uint8Array;
  /** Latest seq held per member index (0 = none). */
  summary: Float64Array;
  digests: Uint8Array[];
}

export function encodeExchange(x: Exchange): Uint8Array {
  const n = x.summary.length;
  let size = 2 + 8 + 4 + 8 * n + 4;
  for (const d of x.digests) size += 4 + d.length;
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  buf[0] = WIRE_VERSION;
  buf[1] = x.type;
  buf.set(x.groupHash, 2);
  let o = 10;
  dv.setUint32(o, n);
  o += 4;
  for (let i = 0; i < n; i++, o += 8) dv.setFloat64(o, x.summary[i]);
  dv.setUint32(o, x.digests.length);
  o += 4;
  for (const d of x.digests) {
    dv.setUint32(o, d.length);
    buf.set(d, o + 4);
    o += 4 + d.length;
  }
  return buf;
}

export function decodeExchange(raw: Uint8Array): Exchange {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const need = (o: number, k: number) => {
    if (o + k > raw.length) throw new WireFormatError(`truncated at byte ${o} of ${raw.length}`);
  };
  need(0, 14);
  if (raw[0] !== WIRE_VERSION) throw new WireFormatError(`unsupported version ${raw[0]}`);
  const type = raw[1];
  if (type !== TYPE_EXCHANGE && type !== TYPE_EXCHANGE_REPLY) {
    throw new WireFormatError(`type ${type}`);
  }
  const groupHash = raw.slice(2, 10);
  const n = dv.getUint32(10);
  if (n > MAX_MEMBERS) throw new WireFormatError(`${n} members`);
  let o = 14;
  need(o, 8 * n + 4);
  const summary = new Float64Array(n);
  for (let i = 0; i < n; i++, o += 8) summary[i] = dv.getFloat64(o);
  const count = dv.getUint32(o);
  o += 4;
  if (count > MAX_MEMBERS + 1) throw new WireFormatError(`${count} digests`);
  const digests: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    need(o, 4);
    const len = dv.getUint32(o);
    need(o + 4, len);
    digests.push(raw.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  if (o !== raw.length) throw new WireFormatError(`${raw.length - o} trailing bytes`);
  return { type, groupHash, summary, digests };
}

/** A deflate-compressed exchange: `u8 version | u8 type=4 | deflate-raw(exchange)`. */
export const TYPE_DEFLATE = 4;
const COMPRESS_ABOVE = 512;

async function pipeAll(
  data: Uint8Array,
  stream: CompressionStream | DecompressionStream,
  limit: number,
): Promise<Uint8Array> {
  const writer = stream.writable.getWriter();
  writer.write(data as BufferSource).then(() => writer.close()).catch(() => {});
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.readable.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel();
        throw new WireFormatError(`inflates beyond ${limit} bytes`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof WireFormatError) throw err;
    throw new WireFormatError(
      `bad deflate data (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Compresses an encoded exchange when it is worth it (above 512 bytes). */
export async function packExchange(frame: Uint8Array): Promise<Uint8Array> {
  if (frame.length <= COMPRESS_ABOVE) return frame;
  const z = await pipeAll(frame, new CompressionStream("deflate-raw"), Infinity);
  const out = new Uint8Array(2 + z.length);
  out[0] = WIRE_VERSION;
  out[1] = TYPE_DEFLATE;
  out.set(z, 2);
  return out;
}

/** Decodes a possibly compressed exchange; inflating stops at `limit` bytes. */
export async function unpackExchange(body: Uint8Array, limit: number): Promise<Exchange> {
  if (body.length >= 2 && body[0] === WIRE_VERSION && body[1] === TYPE_DEFLATE) {
    return decodeExchange(
      await pipeAll(body.subarray(2), new DecompressionStream("deflate-raw"), limit),
    );
  }
  return decodeExchange(body);
}
