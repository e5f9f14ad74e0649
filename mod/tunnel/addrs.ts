/** Small helpers on multiaddrs and connections. */

import type { Connection } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";

export function isCircuit(ma: Multiaddr): boolean {
  return ma.toString().includes("/p2p-circuit");
}

/** The relay peer ID inside a circuit address (`…/p2p/R/p2p-circuit/p2p/X`). */
export function relayPeerOf(ma: Multiaddr): string | undefined {
  return /\/p2p\/([^/]+)\/p2p-circuit/.exec(ma.toString())?.[1];
}

export function isLoopback(ma: Multiaddr): boolean {
  const s = ma.toString();
  return s.startsWith("/ip4/127.") || s.startsWith("/ip6/::1/");
}

/** The peer ID at the end of a multiaddr (`…/p2p/<id>`), if any. */
export function trailingPeerId(ma: Multiaddr): string | undefined {
  return /\/p2p\/([^/]+)$/.exec(ma.toString())?.[1];
}

/** Open, non-relayed connections among `conns`. */
export function directOpen(conns: Connection[]): Connection[] {
  return conns.filter((c) => c.status === "open" && !isCircuit(c.remoteAddr));
}
