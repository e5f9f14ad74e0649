/**
 * Following an ExternalName alias: the CNAME from the zone, then the target's records of the
 * asked type (from the zone when the target is a cluster name, else through the forwarder),
 * combined into one answer as a recursive resolver would. One level only; when the target
 * cannot be resolved the CNAME alone is answered.
 */

import packet from "dns-packet";
import { Buffer } from "node:buffer";
import type { Forwarder } from "./forwarder.ts";
import { isFailure, type ParsedQuery, parseQuery, RCODE } from "./wire.ts";
import { OPT_LENGTH, patchTemplate } from "./response.ts";
import type { ClusterZone } from "./zone.ts";

/** A plain query for `name`/`qtype` (ID 0, RD set). */
function subQuery(name: string, qtype: number): Uint8Array {
  const labels = name.split(".").map((l) => new TextEncoder().encode(l));
  const out = new Uint8Array(12 + labels.reduce((n, l) => n + l.length + 1, 0) + 1 + 4);
  out[2] = 0x01;
  out[5] = 1;
  let off = 12;
  for (const l of labels) {
    out[off++] = l.length;
    out.set(l, off);
    off += l.length;
  }
  out[off++] = 0;
  out[off++] = qtype >> 8;
  out[off++] = qtype & 0xff;
  out[off++] = 0;
  out[off] = 1;
  return out;
}

/**
 * Resolves the alias target and returns the combined response, or the plain CNAME response
 * (`aliasResponse`, already patched for the client) when the target gives nothing usable.
 */
export async function followAlias(
  target: string,
  q: ParsedQuery,
  aliasResponse: Uint8Array,
  zone: ClusterZone,
  forwarder: Forwarder,
  ourUdpSize: number,
): Promise<Uint8Array> {
  const sub = subQuery(target, q.qtype);
  const sq = parseQuery(sub);
  if (isFailure(sq)) return aliasResponse;
  let resp: Uint8Array;
  const z = zone.lookup(target, q.qtype);
  if (z.kind === "template" || z.kind === "built") {
    if (z.kind === "template" && z.chase) return aliasResponse; // one level only
    resp = patchTemplate(z.bytes, sub, sq, ourUdpSize);
  } else if (z.kind === "forward") {
    resp = (await forwarder.resolve(sub, sq)).bytes;
  } else {
    return aliasResponse;
  }
  let alias: packet.Packet, resolved: packet.Packet;
  try {
    alias = packet.decode(Buffer.from(aliasResponse));
    resolved = packet.decode(Buffer.from(resp));
  } catch {
    return aliasResponse; // an undecodable upstream answer: the alias alone is still right
  }
  const rcode = ((resolved as { flags?: number }).flags ?? 0) & 0xf;
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) return aliasResponse;
  const flags = ((alias as { flags?: number }).flags ?? 0) & ~0xf | rcode;
  const combined = new Uint8Array(packet.encode({
    id: alias.id,
    type: "response",
    flags,
    questions: alias.questions,
    answers: [...(alias.answers ?? []), ...(resolved.answers ?? [])],
    authorities: resolved.answers?.length ? [] : resolved.authorities,
    additionals: q.edns
      ? [{ type: "OPT", name: ".", udpPayloadSize: ourUdpSize } as packet.Answer]
      : [],
  }));
  return combined.length > 65535 - OPT_LENGTH ? aliasResponse : combined;
}
