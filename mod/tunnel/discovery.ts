/**
 * Peer discovery, continuously: bootstrap peers are redialed, the DHT (under our own
 * protocol prefix) is walked every finder period, peers found by mDNS or the DHT are dialed,
 * and claims are refreshed with connected peers every heartbeat.
 */

import type { PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import type { Libp2p } from "libp2p";
import type { Logger } from "../log/mod.ts";
import { trailingPeerId } from "./addrs.ts";
import type { Membership } from "./membership.ts";
import { deadline } from "./stream_io.ts";
import type { TaskSet } from "./tasks.ts";

const DIAL_TIMEOUT_MS = 5000;

interface DhtLike {
  getClosestPeers(
    key: Uint8Array,
    options: { signal: AbortSignal },
  ): AsyncIterable<{ name: string; peer?: { id: PeerId; multiaddrs: Multiaddr[] } }>;
}

export interface DiscoveryDeps {
  node: Libp2p<Record<string, unknown>>;
  membership: Membership;
  tasks: TaskSet;
  logger: Logger;
  shutdown: AbortSignal;
  bootstrapPeers: string[];
  finderPeriodMs: number;
}

export class Discovery {
  readonly #self: string;

  constructor(readonly deps: DiscoveryDeps) {
    this.#self = deps.node.peerId.toString();
  }

  /** Dials a peer found by mDNS or the DHT when not connected and not denied. */
  dialFound(id: PeerId): void {
    const p = id.toString();
    const { node, membership } = this.deps;
    if (p === this.#self || node.getConnections(id).length > 0 || membership.isDenied(p)) return;
    const d = deadline(DIAL_TIMEOUT_MS, this.deps.shutdown);
    this.deps.tasks.track(
      node.dial(id, { signal: d.signal }).then(
        () => d.clear(),
        (err) => {
          d.clear();
          this.deps.logger.debug("dial to discovered peer failed", { peerId: p, error: err });
        },
      ),
    );
  }

  /** Dials every bootstrap peer not connected yet. */
  async bootstrap(): Promise<void> {
    const { node } = this.deps;
    await Promise.allSettled(this.deps.bootstrapPeers.map(async (a) => {
      let ma: Multiaddr;
      try {
        ma = multiaddr(a);
      } catch (err) {
        this.deps.logger.warn("ignoring bad bootstrap peer", { address: a, error: err });
        return;
      }
      const id = trailingPeerId(ma);
      if (id && (id === this.#self || node.getConnections(peerIdFromString(id)).length > 0)) return;
      const d = deadline(DIAL_TIMEOUT_MS, this.deps.shutdown);
      try {
        await node.dial(ma, { signal: d.signal });
      } catch (err) {
        this.deps.logger.debug("bootstrap dial failed", { address: a, error: err });
      } finally {
        d.clear();
      }
    }));
  }

  /** One finder round: bootstrap, then a DHT walk towards our own key; dials what it finds. */
  async find(): Promise<void> {
    await this.bootstrap();
    const dht = this.deps.node.services.dht as Partial<DhtLike> | undefined;
    if (!dht?.getClosestPeers) return;
    const d = deadline(Math.min(10_000, this.deps.finderPeriodMs), this.deps.shutdown);
    const found: PeerId[] = [];
    try {
      const key = this.deps.node.peerId.toMultihash().bytes;
      for await (const ev of dht.getClosestPeers(key, { signal: d.signal })) {
        if (ev.name === "FINAL_PEER" && ev.peer) found.push(ev.peer.id);
      }
    } catch (err) {
      this.deps.logger.debug("dht walk ended", { error: err });
    } finally {
      d.clear();
    }
    for (const id of found) this.dialFound(id);
  }

  /** Refreshes claims with connected peers and drops peers whose node left the cluster. */
  async heartbeat(): Promise<void> {
    const { node, membership } = this.deps;
    const seen = new Set<string>();
    for (const c of node.getConnections()) {
      const id = c.remotePeer.toString();
      if (membership.dir.isExpelled(id)) {
        membership.refuse(id, "unknown-node", "node left the cluster");
        continue;
      }
      if (seen.has(id) || c.status !== "open" || c.direction !== "outbound") continue;
      seen.add(id);
      await membership.exchange(c);
    }
  }
}
