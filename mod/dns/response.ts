/**
 * Building responses on the hot path: copies of precomputed messages with ID, RD/CD, the
 * client's question bytes and an OPT patched in; empty responses for errors and truncation.
 */

import { type Alloc, plainAlloc } from "./arena.ts";
import { FLAG, type ParsedQuery, skipName, TYPE } from "./wire.ts";

export const OPT_LENGTH = 11;

/** Writes an OPT record (root name, our payload size, extended rcode bits) at `off`. */
export function writeOpt(
  out: Uint8Array,
  off: number,
  udpSize: number,
  extRcode = 0,
  dnssecOk = false,
): void {
  out[off] = 0;
  out[off + 1] = 0;
  out[off + 2] = TYPE.OPT;
  out[off + 3] = udpSize >> 8;
  out[off + 4] = udpSize & 0xff;
  out[off + 5] = extRcode;
  out[off + 6] = 0;
  out[off + 7] = dnssecOk ? 0x80 : 0;
  out[off + 8] = 0;
  out[off + 9] = 0;
  out[off + 10] = 0;
}

/**
 * A response with no records: header, the echoed question (when `questionEnd` > 12) and an
 * OPT when the query had EDNS. Used for errors, NOTIMP, BADVERS and truncation.
 */
export function emptyResponse(
  query: Uint8Array,
  questionEnd: number,
  rcode: number,
  extraFlags: number,
  edns?: { udpSize: number; extRcode?: number },
): Uint8Array {
  const qEnd = Math.min(questionEnd, query.length);
  const out = new Uint8Array(qEnd + (edns ? OPT_LENGTH : 0));
  out.set(query.subarray(0, qEnd));
  const qflags = (query[2] << 8) | query[3];
  const flags = FLAG.QR | (qflags & (0x7800 | FLAG.RD | FLAG.CD)) | FLAG.RA | extraFlags |
    (rcode & 0xf);
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = qEnd > 12 ? 1 : 0;
  out[6] =
    out[7] =
    out[8] =
    out[9] =
    out[10] =
      0;
  out[11] = edns ? 1 : 0;
  if (edns) writeOpt(out, qEnd, edns.udpSize, edns.extRcode ?? 0);
  return out;
}

/**
 * Copies a precomputed response (header counts and flags set, question placeholder of the
 * same length as the query's) and patches ID, RD/CD, the question bytes (keeping the client's
 * letter case) and an OPT when the query had EDNS.
 */
export function patchTemplate(
  tpl: Uint8Array,
  query: Uint8Array,
  q: ParsedQuery,
  ourUdpSize: number,
  alloc: Alloc = plainAlloc,
): Uint8Array {
  const out = alloc(tpl.length + (q.edns ? OPT_LENGTH : 0));
  out.set(tpl);
  out[0] = query[0];
  out[1] = query[1];
  out[2] = tpl[2] | (query[2] & 0x01);
  out[3] = tpl[3] | (query[3] & 0x10);
  out.set(query.subarray(12, q.questionEnd), 12);
  if (q.edns) {
    const ar = ((out[10] << 8) | out[11]) + 1;
    out[10] = ar >> 8;
    out[11] = ar & 0xff;
    writeOpt(out, tpl.length, ourUdpSize);
  }
  return out;
}

/** The UDP payload limit for an answer to `q`. */
export function udpLimit(q: ParsedQuery, maxUdpPayload: number): number {
  return q.edns ? Math.min(q.udpSize, maxUdpPayload) : 512;
}

/** When `resp` exceeds `limit`, an empty TC response (the client retries over TCP). */
export function truncateIfNeeded(
  resp: Uint8Array,
  query: Uint8Array,
  q: ParsedQuery,
  limit: number,
  ourUdpSize: number,
): Uint8Array {
  if (resp.length <= limit) return resp;
  const rcode = resp[3] & 0xf;
  const aa = resp[2] & 0x04 ? FLAG.AA : 0;
  return emptyResponse(
    query,
    q.questionEnd,
    rcode,
    FLAG.TC | aa,
    q.edns ? { udpSize: ourUdpSize } : undefined,
  );
}

/**
 * A response from a template whose question may differ in length from the query's (the
 * NXDOMAIN template): header of the template, the query's question, the template's records.
 */
export function spliceTemplate(
  tpl: Uint8Array,
  query: Uint8Array,
  q: ParsedQuery,
  ourUdpSize: number,
  alloc: Alloc = plainAlloc,
): Uint8Array {
  const tplQEnd = skipName(tpl, 12) + 4;
  const body = tpl.subarray(tplQEnd);
  const out = alloc(q.questionEnd + body.length + (q.edns ? OPT_LENGTH : 0));
  out.set(tpl.subarray(0, 12));
  out[0] = query[0];
  out[1] = query[1];
  out[2] = tpl[2] | (query[2] & 0x01);
  out[3] = tpl[3] | (query[3] & 0x10);
  out.set(query.subarray(12, q.questionEnd), 12);
  out.set(body, q.questionEnd);
  if (q.edns) {
    const ar = ((out[10] << 8) | out[11]) + 1;
    out[10] = ar >> 8;
    out[11] = ar & 0xff;
    writeOpt(out, q.questionEnd + body.length, ourUdpSize);
  }
  return out;
}
