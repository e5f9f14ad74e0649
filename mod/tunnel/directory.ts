/**
 * Who is who: verified claims by node and by peer, checked against the cluster's Node names
 * and the pinned bindings (trust on first use).
 *
 * With a certificate verifier (KubeEdge identity) every claim must carry a valid attestation
 * for its node name, and the certificate outranks the pin: a node reinstalled with a new key
 * but the same certificate name replaces its pinned peer ID (the newer claim wins).
 */

import type { Logger } from "../log/mod.ts";
import { type Claim, verifyClaim } from "./claim.ts";
import type { PinStore } from "./identity.ts";

export type ClaimVerdict = "ok" | "unknown-node" | "conflict" | "signature" | "attestation";

/** A verdict with the reason, for logs. */
export interface ClaimCheck {
  verdict: ClaimVerdict;
  detail?: string;
}

/** Checks a claim's certificate attestation (attest.ts `Attestor`). */
export interface ClaimVerifier {
  /** What is wrong with the claim's attestation, or undefined when it is valid. */
  verify(c: Claim): string | undefined;
}

export interface ClaimDirectoryOptions {
  /** Require a valid certificate attestation on every claim accepted. */
  verifier?: ClaimVerifier;
  logger?: Logger;
}

export class ClaimDirectory {
  #byNode = new Map<string, Claim>();
  #byPeer = new Map<string, string>();
  #self: Claim;
  #verifier?: ClaimVerifier;

  constructor(
    readonly pins: PinStore,
    readonly knownNodes: () => Set<string>,
    self: Claim,
    readonly options: ClaimDirectoryOptions = {},
  ) {
    this.#self = self;
    this.#verifier = options.verifier;
    this.#store(self);
  }

  /** Our own claim (sent first in every exchange). */
  get self(): Claim {
    return this.#self;
  }

  /**
   * Replaces our own claim (same node and peer, newer, e.g. attested by a renewed
   * certificate) and, with one, the verifier (a renewed CA).
   */
  renew(self: Claim, verifier?: ClaimVerifier): void {
    if (self.node !== this.#self.node || self.peerId !== this.#self.peerId) {
      throw new Error("a renewed own claim must keep the node name and the peer ID");
    }
    this.#self = self;
    if (verifier) this.#verifier = verifier;
    this.#store(self);
  }

  /** Checks and records a claim. Verification is skipped for a claim already held. */
  async accept(c: Claim): Promise<ClaimVerdict> {
    return (await this.check(c)).verdict;
  }

  /** As `accept`, with the reason of a refusal. */
  async check(c: Claim): Promise<ClaimCheck> {
    if (!this.knownNodes().has(c.node)) {
      return { verdict: "unknown-node", detail: `"${c.node}" is not a cluster node` };
    }
    if (this.#verifier) return await this.#checkAttested(c, this.#verifier);
    return { verdict: await this.#acceptPinned(c) };
  }

  async #acceptPinned(c: Claim): Promise<ClaimVerdict> {
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

  async #checkAttested(c: Claim, verifier: ClaimVerifier): Promise<ClaimCheck> {
    if (c.node === this.self.node && c.peerId !== this.self.peerId) {
      return { verdict: "conflict", detail: `another peer claims this node's own name` };
    }
    const held = this.#byNode.get(c.node);
    if (held && held.peerId === c.peerId && held.ts >= c.ts) return { verdict: "ok" };
    const pinnedNode = this.pins.nodeOf(c.peerId);
    if (pinnedNode !== undefined && pinnedNode !== c.node) {
      return { verdict: "conflict", detail: `the peer is pinned to node "${pinnedNode}"` };
    }
    if (!(await verifyClaim(c))) return { verdict: "signature" };
    const problem = verifier.verify(c);
    if (problem) return { verdict: "attestation", detail: problem };
    if (held && held.peerId !== c.peerId && held.ts >= c.ts) {
      return {
        verdict: "conflict",
        detail: `a newer attested claim of node "${c.node}" names peer ${held.peerId}`,
      };
    }
    const replaced = this.pins.repin(c.node, c.peerId);
    if (replaced !== undefined) {
      this.options.logger?.info("node re-keyed: its certificate-attested claim replaces the pin", {
        node: c.node,
        oldPeerId: replaced,
        peerId: c.peerId,
      });
      this.#byPeer.delete(replaced);
    }
    if (held && held.peerId !== c.peerId) this.#byPeer.delete(held.peerId);
    this.#store(c);
    return { verdict: "ok" };
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
