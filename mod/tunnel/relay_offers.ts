/**
 * Which peers offer relay service: those whose identify protocol list holds the circuit relay
 * HOP protocol (and, for relays that offer themselves rather than being configured,
 * SELF_RELAY_PROTOCOL). A relay starts and stops offering at run time (reachability), and
 * identify push tells its peers; this keeps the latest answer per peer, synchronously readable.
 */

import type { IdentifyResult, PeerUpdate } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { Libp2p } from "libp2p";
import { HOP_PROTOCOL } from "./relay_pb.ts";
import { SELF_RELAY_PROTOCOL } from "./relay_role.ts";

interface Offer {
  hop: boolean;
  /** Offered on its own (not a configured relay). */
  self: boolean;
  addrs: Multiaddr[];
}

export class RelayOffers {
  #offers = new Map<string, Offer>();
  #listeners = new Set<(peerId: string, offers: boolean) => void>();
  #waiters = new Map<string, Set<() => void>>();

  constructor(readonly node: Libp2p<Record<string, unknown>>) {
    node.addEventListener("peer:update", this.#onUpdate);
    node.addEventListener("peer:identify", this.#onIdentify);
  }

  #onUpdate = (e: CustomEvent<PeerUpdate>) => {
    const p = e.detail.peer;
    // A peer known only by address (DHT, discovery) has no protocols yet: still unknown.
    if (p.protocols.length === 0) return;
    this.#set(p.id.toString(), p.protocols, p.addresses.map((a) => a.multiaddr));
  };

  #onIdentify = (e: CustomEvent<IdentifyResult>) => {
    const r = e.detail;
    this.#set(r.peerId.toString(), r.protocols, r.listenAddrs);
  };

  #set(peerId: string, protocols: string[], addrs: Multiaddr[]): void {
    if (peerId === this.node.peerId.toString()) return;
    const hop = protocols.includes(HOP_PROTOCOL);
    const self = hop && protocols.includes(SELF_RELAY_PROTOCOL);
    const before = this.#offers.get(peerId);
    this.#offers.set(peerId, { hop, self, addrs: addrs.length ? addrs : before?.addrs ?? [] });
    for (const w of this.#waiters.get(peerId) ?? []) w();
    this.#waiters.delete(peerId);
    if (before?.hop === hop && before?.self === self) return;
    for (const l of this.#listeners) l(peerId, hop);
  }

  /** True/false once the peer's protocols are known; undefined before. */
  offers(peerId: string): boolean | undefined {
    return this.#offers.get(peerId)?.hop;
  }

  /** The peer's listen addresses from identify. */
  addrs(peerId: string): Multiaddr[] {
    return this.#offers.get(peerId)?.addrs ?? [];
  }

  /** Peers that offer relay service on their own now (not configured relays). */
  selfOffering(): string[] {
    return [...this.#offers].filter(([, o]) => o.self).map(([p]) => p);
  }

  /** Forgets a peer (disconnected): its answer may change before we see it again. */
  forget(peerId: string): void {
    this.#offers.delete(peerId);
  }

  /** Waits up to `ms` for the peer's protocols; resolves with `offers(peerId)`. */
  async waitKnown(peerId: string, ms: number, signal?: AbortSignal): Promise<boolean | undefined> {
    if (this.offers(peerId) !== undefined || signal?.aborted) return this.offers(peerId);
    let done!: () => void;
    const wake = new Promise<void>((r) => (done = r));
    const set = this.#waiters.get(peerId) ?? new Set();
    set.add(done);
    this.#waiters.set(peerId, set);
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    await wake;
    clearTimeout(timer);
    signal?.removeEventListener("abort", done);
    set.delete(done);
    if (set.size === 0 && this.#waiters.get(peerId) === set) this.#waiters.delete(peerId);
    return this.offers(peerId);
  }

  /** Called when a peer starts or stops offering relay service. */
  onChange(fn: (peerId: string, offers: boolean) => void): void {
    this.#listeners.add(fn);
  }

  close(): void {
    this.node.removeEventListener("peer:update", this.#onUpdate);
    this.node.removeEventListener("peer:identify", this.#onIdentify);
    for (const set of this.#waiters.values()) for (const w of set) w();
    this.#waiters.clear();
    this.#listeners.clear();
  }
}
