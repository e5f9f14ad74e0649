/**
 * Who is who: verified claims by node and by peer, checked against the cluster's Node names
 * and the pinned bindings (trust on first use).
 */

import { type Claim, verifyClaim } from "./claim.ts";
import type { PinStore } from "./identity.ts";

export type ClaimVerdict = "ok" | "unknown-node" | "conflict" | "signature";

export class ClaimDirectory {
  #byNode = new Map<string, Claim>();
  #byPeer = new Map<string, string>();

  constructor(
    readonly pins: PinStore,
    readonly knownNodes: () => Set<string>,
    readonly self: Claim,
  ) {
    this.#store(self);
  }

  /** Checks and records a claim. Verification is skipped for a claim already held. */
  async accept(c: Claim): Promise<ClaimVerdict> {
    if (!this.knownNodes().has(c.node)) return "unknown-node";
    const pinned = this.pins.get(c.node);
    if (pinned !== undefined && pinned !== c.peerId) return "conflict";
    const pinnedNode = this.pins.nodeOf(c.peerId);
    if (pinnedNode !== undefined && pinnedNode !== c.node) return "conflict";
    const held = this.#byNode.get(c.node);
    if (held && held.peerId === c.peerId && held.ts >= c.ts) return "ok";
    if (!(await verifyClaim(c))) return "signature";
    if (!this.pins.pin(c.node, c.peerId)) return "conflict";
    this.#store(c);
    return "ok";
  }

  #store(c: Claim): void {
    this.#byNode.set(c.node, c);
    this.#byPeer.set(c.peerId, c.node);
  }

  /** The peer ID of `node`, when known and still a cluster node. */
  peerOf(node: string): string | undefined {
    const c = this.#byNode.get(node);
    return c && (node === this.self.node || this.knownNodes().has(node)) ? c.peerId : undefined;
  }

  /** The node name of a verified peer that is still a cluster node. */
  nodeOf(peerId: string): string | undefined {
    const n = this.#byPeer.get(peerId);
    return n !== undefined && this.knownNodes().has(n) ? n : undefined;
  }

  /** True when the peer is pinned to a name that is no longer a cluster node. */
  isExpelled(peerId: string): boolean {
    const n = this.pins.nodeOf(peerId);
    return n !== undefined && n !== this.self.node && !this.knownNodes().has(n);
  }

  /** Own claim first, then every other claim held (for gossip). */
  all(): Claim[] {
    const out = [this.self];
    for (const c of this.#byNode.values()) {
      if (c !== this.self && this.knownNodes().has(c.node)) out.push(c);
    }
    return out;
  }
}
