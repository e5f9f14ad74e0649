/**
 * Builds whole DNS messages for the precomputed cluster answers: owner names are compressed
 * against earlier names (answers point at the question), rdata is encoded by `dns-packet`.
 */

import packet from "dns-packet";
import { CLASS_IN, FLAG, TYPE } from "./wire.ts";

export type RecordData =
  | { type: typeof TYPE.A | typeof TYPE.AAAA; data: string }
  | { type: typeof TYPE.CNAME | typeof TYPE.PTR | typeof TYPE.NS; data: string }
  | {
    type: typeof TYPE.SRV;
    data: { priority: number; weight: number; port: number; target: string };
  }
  | {
    type: typeof TYPE.SOA;
    data: {
      mname: string;
      rname: string;
      serial: number;
      refresh: number;
      retry: number;
      expire: number;
      minimum: number;
    };
  };

export type ResourceRecord = RecordData & { name: string; ttl: number };

const RDATA_CODEC: Record<number, string> = {
  [TYPE.A]: "A",
  [TYPE.AAAA]: "AAAA",
  [TYPE.CNAME]: "CNAME",
  [TYPE.PTR]: "PTR",
  [TYPE.NS]: "NS",
  [TYPE.SRV]: "SRV",
  [TYPE.SOA]: "SOA",
};

/** Encodes rdata (with its 2-byte length prefix) through dns-packet. */
export function encodeRdata(rr: RecordData): Uint8Array {
  const codecs = packet as unknown as {
    record(type: string): { encode(data: unknown): Uint8Array };
  };
  return codecs.record(RDATA_CODEC[rr.type]).encode(rr.data);
}

/** A growable buffer with name compression (suffixes remembered by offset). */
export class MessageWriter {
  #buf = new Uint8Array(512);
  #len = 0;
  #names = new Map<string, number>();

  get length(): number {
    return this.#len;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
  u8(v: number): void {
    this.#room(1);
    this.#buf[this.#len++] = v & 0xff;
  }
  u16(v: number): void {
    this.#room(2);
    this.#buf[this.#len++] = (v >> 8) & 0xff;
    this.#buf[this.#len++] = v & 0xff;
  }
  u32(v: number): void {
    this.u16((v >>> 16) & 0xffff);
    this.u16(v & 0xffff);
  }
  bytes(b: Uint8Array): void {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }
  setU16(at: number, v: number): void {
    this.#buf[at] = (v >> 8) & 0xff;
    this.#buf[at + 1] = v & 0xff;
  }

  /** Writes a lower-case dotted name (plain labels), compressing known suffixes. */
  name(name: string): void {
    const labels = name === "" ? [] : name.split(".");
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join(".");
      const at = this.#names.get(suffix);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.#len < 0x3fff) this.#names.set(suffix, this.#len);
      const enc = new TextEncoder().encode(labels[i]);
      this.u8(enc.length);
      this.bytes(enc);
    }
    this.u8(0);
  }

  record(rr: ResourceRecord): void {
    this.name(rr.name);
    this.u16(rr.type);
    this.u16(CLASS_IN);
    this.u32(rr.ttl);
    this.bytes(encodeRdata(rr));
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

export interface MessageParts {
  qname: string;
  qtype: number;
  rcode: number;
  authoritative: boolean;
  answers?: readonly ResourceRecord[];
  authority?: readonly ResourceRecord[];
  additional?: readonly ResourceRecord[];
}

/** A complete response with ID 0, RD clear and the question as given (patched per query). */
export function buildMessage(p: MessageParts): Uint8Array {
  const w = new MessageWriter();
  const an = p.answers ?? [];
  const ns = p.authority ?? [];
  const ar = p.additional ?? [];
  w.u16(0);
  w.u16(FLAG.QR | FLAG.RA | (p.authoritative ? FLAG.AA : 0) | (p.rcode & 0xf));
  w.u16(1);
  w.u16(an.length);
  w.u16(ns.length);
  w.u16(ar.length);
  w.name(p.qname);
  w.u16(p.qtype);
  w.u16(CLASS_IN);
  for (const rr of an) w.record(rr);
  for (const rr of ns) w.record(rr);
  for (const rr of ar) w.record(rr);
  return w.finish();
}
