/**
 * The inbox: validates signed digests and keeps the latest one per group member. Rejects
 * malformed messages, other groups, unknown senders, keys that differ from the pinned or
 * tunnel-claimed one, bad signatures, stale (older than voteTimeout) or future messages, and
 * replays (seq not above the last accepted from that sender).
 */

import { WireFormatError } from "./errors.ts";
import { bytesEqual, type PeerKeyLookup, SignatureVerifier } from "./identity.ts";
import type { KeyPins } from "./key_pins.ts";
import type { Group } from "./groups.ts";
import type { ObserverRow } from "./vote.ts";
import { decodeDigest, type Digest } from "./wire.ts";

export type RejectReason =
  | "malformed"
  | "other-group"
  | "unknown-sender"
  | "key-mismatch"
  | "bad-signature"
  | "stale"
  | "future"
  | "replay";

export type AcceptResult = { ok: true; digest: Digest } | {
  ok: false;
  reason: RejectReason;
  detail: string;
};

export interface InboxDeps {
  pins: KeyPins;
  peerKey?: PeerKeyLookup;
  now: () => number;
}

export interface InboxOptions {
  voteTimeoutMs: number;
  /** Tolerated clock skew into the future. Default voteTimeoutMs. */
  maxSkewMs?: number;
}

interface Held {
  digest: Digest;
  row: ObserverRow;
}

export class DigestInbox {
  #group?: Group;
  #hash?: Uint8Array;
  #index = new Map<string, number>();
  #held = new Map<string, Held>();
  /** Last accepted seq per sender; survives regrouping so old messages stay replays. */
  #lastSeq = new Map<string, number>();
  #verifier = new SignatureVerifier();

  constructor(private readonly deps: InboxDeps, private readonly options: InboxOptions) {}

  /** Switches to a new group; digests aligned with another member list are dropped. */
  setGroup(group: Group | undefined, hash: Uint8Array | undefined): void {
    const same = this.#hash && hash && bytesEqual(this.#hash, hash);
    this.#group = group;
    this.#hash = hash;
    this.#index = new Map((group?.members ?? []).map((m, i) => [m, i]));
    if (!same) this.#held.clear();
  }

  get groupHash(): Uint8Array | undefined {
    return this.#hash;
  }

  async accept(raw: Uint8Array): Promise<AcceptResult> {
    let d: Digest;
    try {
      d = decodeDigest(raw);
    } catch (err) {
      if (err instanceof WireFormatError) {
        return { ok: false, reason: "malformed", detail: err.message };
      }
      throw err;
    }
    const group = this.#group;
    if (!group || !this.#hash || !bytesEqual(d.groupHash, this.#hash) || d.group !== group.name) {
      return {
        ok: false,
        reason: "other-group",
        detail: `from "${d.from}" for group "${d.group}"`,
      };
    }
    if (!this.#index.has(d.from)) {
      return {
        ok: false,
        reason: "unknown-sender",
        detail: `"${d.from}" is not a member of "${group.name}"`,
      };
    }
    const claimed = this.deps.peerKey?.(d.from);
    const pinned = this.deps.pins.get(d.from);
    const expected = claimed ?? pinned;
    if (expected && !bytesEqual(expected, d.publicKey)) {
      return {
        ok: false,
        reason: "key-mismatch",
        detail: `"${d.from}" signed with a key other than its ${
          claimed ? "claimed" : "pinned"
        } one`,
      };
    }
    if (!(await this.#verifier.verify(d.publicKey, d.signed, d.signature))) {
      return { ok: false, reason: "bad-signature", detail: `from "${d.from}" seq ${d.seq}` };
    }
    const now = this.deps.now();
    if (d.ts <= now - this.options.voteTimeoutMs) {
      return {
        ok: false,
        reason: "stale",
        detail: `from "${d.from}", ${Math.round(now - d.ts)} ms old`,
      };
    }
    if (d.ts > now + (this.options.maxSkewMs ?? this.options.voteTimeoutMs)) {
      return {
        ok: false,
        reason: "future",
        detail: `from "${d.from}", ${Math.round(d.ts - now)} ms ahead`,
      };
    }
    // Re-checked after the await: the group may have changed meanwhile.
    if (this.#hash !== undefined && !bytesEqual(d.groupHash, this.#hash)) {
      return {
        ok: false,
        reason: "other-group",
        detail: `from "${d.from}" for group "${d.group}"`,
      };
    }
    const last = this.#lastSeq.get(d.from) ?? 0;
    if (d.seq <= last) {
      return { ok: false, reason: "replay", detail: `from "${d.from}" seq ${d.seq} <= ${last}` };
    }
    if (!expected) this.deps.pins.pin(d.from, d.publicKey);
    this.#store(d);
    return { ok: true, digest: d };
  }

  /** Our own digest (already trusted). */
  acceptOwn(raw: Uint8Array): Digest {
    const d = decodeDigest(raw);
    this.#store(d);
    return d;
  }

  #store(d: Digest): void {
    this.#lastSeq.set(d.from, d.seq);
    const raw = d.raw.slice();
    this.#held.set(d.from, {
      digest: { ...d, raw },
      row: { observer: d.from, states: d.states, observedAt: d.observedAt },
    });
  }

  rows(): ObserverRow[] {
    return [...this.#held.values()].map((h) => h.row);
  }

  /** Latest seq held per member (0 = none), aligned with the members. */
  summary(): Float64Array {
    const members = this.#group?.members ?? [];
    const out = new Float64Array(members.length);
    for (let i = 0; i < members.length; i++) out[i] = this.#held.get(members[i])?.digest.seq ?? 0;
    return out;
  }

  /** Raw fresh digests newer than a peer's summary (same member list). */
  newerThan(summary: Float64Array, exclude?: string): Uint8Array[] {
    const members = this.#group?.members ?? [];
    const oldest = this.deps.now() - this.options.voteTimeoutMs;
    const out: Uint8Array[] = [];
    for (let i = 0; i < members.length; i++) {
      if (members[i] === exclude) continue;
      const h = this.#held.get(members[i]);
      if (h && h.digest.seq > (summary[i] ?? 0) && h.digest.ts > oldest) out.push(h.digest.raw);
    }
    return out;
  }

  latest(node: string): Digest | undefined {
    return this.#held.get(node)?.digest;
  }
}
