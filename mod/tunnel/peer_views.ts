/**
 * What `status.peers[]` shows for each verified peer: the path new streams to it take now
 * (direct, or the circuit through the best-ranked relay) and its last measured RTT.
 */

import type { Connection } from "@libp2p/interface";
import type { PathKind } from "../contracts/mod.ts";
import { isCircuit, relayPeerOf } from "./addrs.ts";

export interface PeerView {
  node: string;
  peerId: string;
  path: PathKind;
  relay: string | null;
  rttMs: number | null;
}

export interface PeerViewInput {
  connections: Connection[];
  /** Node name of a verified peer (undefined: not shown). */
  nodeOf(peerId: string): string | undefined;
  /** Relay peer IDs in the order new streams try them (primary first). */
  relayOrder: string[];
  /** Streams to non-relays take a circuit even when a direct connection exists. */
  relayOnly: boolean;
  /** RTT in ms measured by `ping`, when newer than the connection's own. */
  rtt(peerId: string): number | undefined;
}

export function peerViews(input: PeerViewInput): PeerView[] {
  const byPeer = new Map<string, Connection[]>();
  for (const c of input.connections) {
    if (c.status !== "open") continue;
    const id = c.remotePeer.toString();
    byPeer.set(id, [...(byPeer.get(id) ?? []), c]);
  }
  const order = input.relayOrder;
  const relayIds = new Set(order);
  // New streams take the circuit through the best-ranked relay (a pre-warmed circuit through
  // the standby waits for failover): show that one.
  const rank = (c: Connection) => {
    const i = order.indexOf(relayPeerOf(c.remoteAddr) ?? "");
    return i < 0 ? order.length : i;
  };
  const out: PeerView[] = [];
  for (const [id, conns] of byPeer) {
    const name = input.nodeOf(id);
    if (name === undefined) continue;
    // With relayOnly, streams to non-relays take a circuit even when a direct connection
    // exists (for claims and the DHT): show the path streams take.
    const streamsDirect = !input.relayOnly || relayIds.has(id);
    const direct = streamsDirect ? conns.find((c) => !isCircuit(c.remoteAddr)) : undefined;
    const circuits = conns.filter((x) => isCircuit(x.remoteAddr)).sort((x, y) => rank(x) - rank(y));
    const c = direct ?? circuits[0] ?? conns[0];
    const relayPeer = direct ? undefined : relayPeerOf(c.remoteAddr);
    const rtt = input.rtt(id) ?? c.rtt;
    out.push({
      node: name,
      peerId: id,
      path: direct ? "tunnel-direct" : "tunnel-relay",
      relay: relayPeer ? (input.nodeOf(relayPeer) ?? relayPeer) : null,
      rttMs: rtt === undefined ? null : Math.round(rtt * 10) / 10,
    });
  }
  return out.sort((a, b) => a.node.localeCompare(b.node));
}
