/**
 * The forwarder's answer cache: upstream responses stored as wire bytes (without OPT, ID 0),
 * served with TTLs counted down. Positive answers live for their smallest TTL, negative ones
 * (NXDOMAIN, NODATA) for the SOA's negative TTL (RFC 2308); both capped by `maxTtlMs`.
 * Bounded by entries and bytes; least recently used entries go first.
 */

import { type Alloc, plainAlloc } from "./arena.ts";
import { FLAG, type ParsedQuery, RCODE, walkResponse } from "./wire.ts";
import { OPT_LENGTH, writeOpt } from "./response.ts";

export interface CacheLimits {
  maxEntries: number;
  maxBytes: number;
  maxTtlMs: number;
}

/** An upstream answer in stored form. */
export interface StoredAnswer {
  /** The response without its OPT record, ID 0. */
  bytes: Uint8Array;
  questionEnd: number;
  ttlOffsets: readonly number[];
  /** The TTL values as received, by `ttlOffsets` index. */
  ttls: readonly number[];
  /** How long it may be cached (0: not cacheable). */
  cacheMs: number;
  rcode: number;
}

/**
 * Validates an upstream response and brings it to stored form; undefined when malformed or
 * when it has an OPT record that is not last.
 */
export function storeForm(
  resp: Uint8Array,
  questionEnd: number,
  maxTtlMs: number,
): StoredAnswer | undefined {
  const layout = walkResponse(resp, questionEnd);
  if (!layout) return undefined;
  let bytes = resp.subarray(0, layout.end);
  if (layout.opt) {
    if (layout.opt[1] !== layout.end) return undefined;
    bytes = bytes.subarray(0, layout.opt[0]);
  }
  const out = bytes.slice();
  if (layout.opt) {
    const ar = ((out[10] << 8) | out[11]) - 1;
    out[10] = ar >> 8;
    out[11] = ar & 0xff;
  }
  out[0] = out[1] = 0;
  const view = new DataView(out.buffer);
  const ttls = layout.ttlOffsets.map((o) => view.getUint32(o));
  let seconds = 0;
  if (layout.rcode === RCODE.NOERROR && layout.answers > 0) {
    seconds = layout.minTtl;
  } else if (layout.rcode === RCODE.NXDOMAIN || layout.rcode === RCODE.NOERROR) {
    seconds = layout.soa ? Math.min(layout.soa.ttl, layout.soa.minimum) : 0;
  }
  const truncated = (out[2] & (FLAG.TC >> 8)) !== 0;
  const cacheMs = truncated ? 0 : Math.min(seconds * 1000, maxTtlMs);
  return {
    bytes: out,
    questionEnd,
    ttlOffsets: layout.ttlOffsets,
    ttls,
    cacheMs,
    rcode: layout.rcode,
  };
}

/**
 * The response for a client from a stored answer: its ID, RD/CD bits and question letter
 * case, TTLs reduced by `elapsedMs`, AA cleared, an OPT when the client sent EDNS.
 */
export function renderStored(
  s: StoredAnswer,
  query: Uint8Array,
  q: ParsedQuery,
  elapsedMs: number,
  ourUdpSize: number,
  alloc: Alloc = plainAlloc,
): Uint8Array {
  const out = alloc(s.bytes.length + (q.edns ? OPT_LENGTH : 0));
  out.set(s.bytes);
  out[0] = query[0];
  out[1] = query[1];
  out[2] = (out[2] & ~(0x04 | 0x02 | 0x01)) | 0x80 | (query[2] & 0x01);
  out[3] = (out[3] & ~0x10) | (query[3] & 0x10);
  if (q.questionEnd === s.questionEnd) out.set(query.subarray(12, q.questionEnd), 12);
  if (elapsedMs > 0) {
    const dec = Math.floor(elapsedMs / 1000);
    for (let i = 0; i < s.ttlOffsets.length; i++) {
      const ttl = Math.max(0, s.ttls[i] - dec);
      const o = s.ttlOffsets[i];
      out[o] = ttl >>> 24;
      out[o + 1] = (ttl >>> 16) & 0xff;
      out[o + 2] = (ttl >>> 8) & 0xff;
      out[o + 3] = ttl & 0xff;
    }
  }
  if (q.edns) {
    const ar = ((out[10] << 8) | out[11]) + 1;
    out[10] = ar >> 8;
    out[11] = ar & 0xff;
    writeOpt(out, s.bytes.length, ourUdpSize);
  }
  return out;
}

interface Entry {
  answer: StoredAnswer;
  storedAt: number;
  expiresAt: number;
}

export class AnswerCache {
  #map = new Map<string, Entry>();
  #bytes = 0;

  constructor(private readonly limits: CacheLimits, private readonly now: () => number) {}

  get size(): number {
    return this.#map.size;
  }
  get bytes(): number {
    return this.#bytes;
  }

  /** The live entry and its age in ms, refreshed as most recently used. */
  get(key: string): { answer: StoredAnswer; ageMs: number } | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    const t = this.now();
    if (t >= e.expiresAt) {
      this.#delete(key, e);
      return undefined;
    }
    this.#map.delete(key);
    this.#map.set(key, e);
    return { answer: e.answer, ageMs: t - e.storedAt };
  }

  /** Stores an answer when cacheable; returns whether it was stored. */
  set(key: string, answer: StoredAnswer): boolean {
    if (answer.cacheMs <= 0 || this.limits.maxEntries <= 0) return false;
    const size = answer.bytes.length + key.length * 2 + 64;
    if (size > this.limits.maxBytes) return false;
    const old = this.#map.get(key);
    if (old) this.#delete(key, old);
    const t = this.now();
    this.#map.set(key, { answer, storedAt: t, expiresAt: t + answer.cacheMs });
    this.#bytes += size;
    while (this.#map.size > this.limits.maxEntries || this.#bytes > this.limits.maxBytes) {
      const [k, e] = this.#map.entries().next().value as [string, Entry];
      this.#delete(k, e);
    }
    return true;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  #delete(key: string, e: Entry): void {
    this.#map.delete(key);
    this.#bytes -= e.answer.bytes.length + key.length * 2 + 64;
  }
}
