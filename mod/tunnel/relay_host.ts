/** The libp2p side of relay management: connect, ping, reserve, release (a RelayHost). */

import type { PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { Libp2p } from "libp2p";
import { directOpen, isCircuit, relayPeerOf } from "./addrs.ts";
import { ClaimError, WireError } from "./errors.ts";
import type { ComponentsHandle } from "./host.ts";
import { CLAIM_TIMEOUT_MS, type Membership } from "./membership.ts";
import type { TunnelTestHooks } from "./options.ts";
import { pingOn } from "./ping.ts";
import type { RelayOffers } from "./relay_offers.ts";
import type { RelayHost } from "./relays.ts";

/** How long `connect` waits for a relay's identify (its protocol list). */
const IDENTIFY_WAIT_MS = 2000;

interface ReservationStore {
  addRelay(peer: PeerId, type: "configured"): Promise<unknown>;
  hasReservation(peer: PeerId): boolean;
  /** Peers whose reservation once failed to dial; addRelay refuses them for good. */
  relayFilter?: { remove?(key: Uint8Array): boolean };
}

/** The circuit relay transport's reservation store (reached through the libp2p components). */
function reservationStore(node: Libp2p<Record<string, unknown>>): ReservationStore | undefined {
  const handle = node.services.handle as ComponentsHandle | undefined;
  const tm = handle?.components.transportManager as { getTransports(): unknown[] } | undefined;
  const t = tm?.getTransports().find((x) => (x as { reservationStore?: unknown }).reservationStore);
  return (t as { reservationStore: ReservationStore } | undefined)?.reservationStore;
}

export function libp2pRelayHost(
  node: Libp2p<Record<string, unknown>>,
  membership: Membership,
  /** performance.now() of the last bytes received from a peer. */
  lastActivity: (peerId: string) => number,
  hooks?: TunnelTestHooks,
  /** Who offers relay service (identify); without it every relay is assumed to. */
  offers?: RelayOffers,
): RelayHost {
  const direct = (peerId: string) => directOpen(node.getConnections(peerIdFromString(peerId)));
  return {
    async connect(relayNode: string, addrs: Multiaddr[], signal: AbortSignal): Promise<string> {
      const conn = await node.dial(addrs, { signal });
      const peer = conn.remotePeer.toString();
      const name = await membership.waitVerified(peer, CLAIM_TIMEOUT_MS);
      if (name !== relayNode) {
        throw new ClaimError(
          "conflict",
          `relay address ${addrs[0]} belongs to node "${name ?? "unverified"}", not "${relayNode}"`,
        );
      }
      // Identify runs on every new connection; a relay that found itself unreachable does
      // not list the HOP protocol (checked by the relay manager).
      await offers?.waitKnown(peer, IDENTIFY_WAIT_MS, signal);
      return peer;
    },
    isConnected: (peerId) => direct(peerId).length > 0,
    async measureRtt(
      relayNode: string,
      peerId: string,
      signal: AbortSignal,
      pings = 3,
    ): Promise<number> {
      const measured = async () => {
        const conn = direct(peerId)[0];
        if (!conn) throw new WireError(`not connected to relay ${relayNode}`);
        // The least of several pings: the first one on a fresh connection pays for warm-up.
        let best = Infinity;
        for (let i = 0; i < pings; i++) best = Math.min(best, await pingOn(conn, signal));
        return best;
      };
      return hooks?.measureRtt ? await hooks.measureRtt(relayNode, measured) : await measured();
    },
    async reserve(peerId: string): Promise<void> {
      const store = reservationStore(node);
      if (!store) throw new WireError("circuit relay transport not available");
      const peer = peerIdFromString(peerId);
      // The library never forgets a relay that was down once (it would refuse it forever);
      // we only reserve relays we just reached, so clear that memory first.
      store.relayFilter?.remove?.(peer.toMultihash().bytes);
      await store.addRelay(peer, "configured");
    },
    offersRelay: (peerId) => offers?.offers(peerId),
    hasReservation: (peerId) =>
      reservationStore(node)?.hasReservation(peerIdFromString(peerId)) ?? false,
    lastActivity,
    abort(peerId: string): void {
      for (const c of node.getConnections(peerIdFromString(peerId))) {
        if (!isCircuit(c.remoteAddr)) c.abort(new WireError("relay stopped answering"));
      }
    },
    async release(peerId: string): Promise<void> {
      const through = node.getConnections().some((c) =>
        c.status === "open" && relayPeerOf(c.remoteAddr) === peerId
      );
      if (!through) await node.hangUp(peerIdFromString(peerId)).catch(() => {});
    },
  };
}
