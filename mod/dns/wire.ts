/**
 * DNS wire helpers for the hot path: a bounds-checked query parser (header, one question,
 * EDNS OPT), a record walker for upstream answers, and response patching (ID, flags,
 * question echo, OPT, truncation). Nothing here allocates on the parse path except the
 * lower-cased name string.
 */

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

export const CLASS_IN = 1;
export const CLASS_ANY = 255;

/** Header flag bits (16-bit flags word). */
export const FLAG = {
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
};

/** Names for metrics (anything else is "other"). */
const TYPE_NAMES = new Map<number, string>([
  [1, "A"],
  [2, "NS"],
  [5, "CNAME"],
  [6, "SOA"],
  [12, "PTR"],
  [15, "MX"],
  [16, "TXT"],
  [28, "AAAA"],
  [33, "SRV"],
  [65, "HTTPS"],
  [255, "ANY"],
]);
export function typeName(t: number): string {
  return TYPE_NAMES.get(t) ?? "other";
}
const RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
export function rcodeName(r: number): string {
  return RCODE_NAMES[r] ?? `RCODE${r}`;
}

export interface ParsedQuery {
  id: number;
  /** Raw 16-bit flags of the query. */
  flags: number;
  /** Lower-case, dot-separated, no trailing dot ("" is the root); odd bytes escaped as \DDD. */
  qname: string;
  qtype: number;
  qclass: number;
  /** Offset just past the question (the question is bytes 12..questionEnd). */
  questionEnd: number;
  edns: boolean;
  /** The client's advertised UDP payload size (512 without EDNS). */
  udpSize: number;
  ednsVersion: number;
  dnssecOk: boolean;
}

/** Why a packet could not be parsed: drop it, or answer with this rcode. */
export interface ParseFailure {
  error: "drop" | "formerr" | "notimp";
  /** Offset past a well-formed question to echo, or 12 when none. */
  questionEnd: number;
}

/** Reads a name without following pointers; returns the offset after it or -1. */
export function skipName(b: Uint8Array, off: number): number {
  let total = 0;
  while (off < b.length) {
    const len = b[off];
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= b.length ? off + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    total += len + 1;
    if (total > 255) return -1;
    off += len + 1;
  }
  return -1;
}

/**
 * Parses a query. Never throws: malformed input yields a ParseFailure (drop when the header
 * itself is unusable or the packet is a response).
 */
export function parseQuery(b: Uint8Array): ParsedQuery | ParseFailure {
  if (b.length < 12) return { error: "drop", questionEnd: 12 };
  const flags = (b[2] << 8) | b[3];
  if (flags & FLAG.QR) return { error: "drop", questionEnd: 12 };
  const opcode = (flags >> 11) & 0xf;
  const qd = (b[4] << 8) | b[5];
  if (qd !== 1) return { error: opcode !== 0 ? "notimp" : "formerr", questionEnd: 12 };
  // The question name: labels only (a pointer in the first name can only point into the header).
  let off = 12;
  let name = "";
  let total = 0;
  for (;;) {
    if (off >= b.length) return { error: "formerr", questionEnd: 12 };
    const len = b[off++];
    if (len === 0) break;
    if (len > 63 || off + len > b.length) return { error: "formerr", questionEnd: 12 };
    total += len + 1;
    if (total > 255) return { error: "formerr", questionEnd: 12 };
    if (name.length) name += ".";
    for (let i = off; i < off + len; i++) {
      const c = b[i];
      if (c >= 0x41 && c <= 0x5a) name += String.fromCharCode(c + 32);
      else if (c === 0x2e || c === 0x5c) name += "\\" + String.fromCharCode(c);
      else if (c > 0x20 && c < 0x7f) name += String.fromCharCode(c);
      else name += "\\" + String(c).padStart(3, "0");
    }
    off += len;
  }
  if (off + 4 > b.length) return { error: "formerr", questionEnd: 12 };
  const qtype = (b[off] << 8) | b[off + 1];
  const qclass = (b[off + 2] << 8) | b[off + 3];
  const questionEnd = off + 4;
  if (opcode !== 0) return { error: "notimp", questionEnd };
  off = questionEnd;
  // Skip answer and authority records; look for one OPT in the additional section.
  const an = (b[6] << 8) | b[7];
  const ns = (b[8] << 8) | b[9];
  const ar = (b[10] << 8) | b[11];
  let edns = false;
  let udpSize = 512;
  let ednsVersion = 0;
  let dnssecOk = false;
  const records = an + ns + ar;
  for (let i = 0; i < records; i++) {
    const nameStart = off;
    off = skipName(b, off);
    if (off < 0 || off + 10 > b.length) return { error: "formerr", questionEnd };
    const type = (b[off] << 8) | b[off + 1];
    const rdlen = (b[off + 8] << 8) | b[off + 9];
    if (i >= an + ns && type === TYPE.OPT) {
      if (edns || b[nameStart] !== 0) return { error: "formerr", questionEnd };
      edns = true;
      udpSize = Math.max(512, (b[off + 2] << 8) | b[off + 3]);
      ednsVersion = b[off + 5];
      dnssecOk = (b[off + 6] & 0x80) !== 0;
    }
    off += 10 + rdlen;
    if (off > b.length) return { error: "formerr", questionEnd };
  }
  return {
    id: (b[0] << 8) | b[1],
    flags,
    qname: name,
    qtype,
    qclass,
    questionEnd,
    edns,
    udpSize,
    ednsVersion,
    dnssecOk,
  };
}

export function isFailure(p: ParsedQuery | ParseFailure): p is ParseFailure {
  return (p as ParseFailure).error !== undefined;
}

/** Case-insensitive comparison of two question sections. */
export function sameQuestion(a: Uint8Array, aEnd: number, b: Uint8Array, bEnd: number): boolean {
  if (aEnd !== bEnd || a.length < aEnd || b.length < bEnd) return false;
  for (let i = 12; i < aEnd; i++) {
    let x = a[i];
    let y = b[i];
    if (x >= 0x41 && x <= 0x5a) x += 32;
    if (y >= 0x41 && y <= 0x5a) y += 32;
    if (x !== y) return false;
  }
  return true;
}

/** Where the records of a response are: TTL field offsets and the OPT record, if any. */
export interface RecordLayout {
  rcode: number;
  answers: number;
  /** Smallest TTL among answer and authority records (Infinity when none). */
  minTtl: number;
  /** TTL and SOA MINIMUM of the first SOA in the authority section, if any. */
  soa?: { ttl: number; minimum: number };
  /** Offsets of every TTL field except the OPT's. */
  ttlOffsets: number[];
  /** [start, end) of the OPT record, if any. */
  opt?: [number, number];
  end: number;
}

/** Walks a response; undefined when it is malformed. */
export function walkResponse(b: Uint8Array, questionEnd: number): RecordLayout | undefined {
  if (b.length < 12) return undefined;
  const an = (b[6] << 8) | b[7];
  const ns = (b[8] << 8) | b[9];
  const ar = (b[10] << 8) | b[11];
  let off = questionEnd;
  const layout: RecordLayout = {
    rcode: b[3] & 0xf,
    answers: an,
    minTtl: Infinity,
    ttlOffsets: [],
    end: 0,
  };
  for (let i = 0; i < an + ns + ar; i++) {
    const start = off;
    off = skipName(b, off);
    if (off < 0 || off + 10 > b.length) return undefined;
    const type = (b[off] << 8) | b[off + 1];
    const ttl = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
    const rdlen = (b[off + 8] << 8) | b[off + 9];
    const rdata = off + 10;
    if (rdata + rdlen > b.length) return undefined;
    if (type === TYPE.OPT) {
      if (layout.opt) return undefined;
      layout.opt = [start, rdata + rdlen];
    } else {
      layout.ttlOffsets.push(off + 4);
      if (i < an + ns) layout.minTtl = Math.min(layout.minTtl, ttl);
      if (type === TYPE.SOA && i >= an && i < an + ns && !layout.soa && rdlen >= 22) {
        const m = rdata + rdlen - 4;
        layout.soa = {
          ttl,
          minimum: ((b[m] << 24) | (b[m + 1] << 16) | (b[m + 2] << 8) | b[m + 3]) >>> 0,
        };
      }
    }
    off = rdata + rdlen;
  }
  layout.end = off;
  return layout;
}
