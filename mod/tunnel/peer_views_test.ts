import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { Connection } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { peerViews } from "./peer_views.ts";

/** The parts of a libp2p Connection peerViews reads. */
function conn(peer: string, addr: string, rtt?: number, status = "open"): Connection {
  return {
    remotePeer: { toString: () => peer },
    remoteAddr: multiaddr(addr),
    status,
    rtt,
  } as unknown as Connection;
}

const names: Record<string, string> = { P_B: "b", P_C: "c", P_R1: "r1", P_R2: "r2" };

Deno.test("peer views: the direct connection, else the circuit through the best-ranked relay; unverified peers hidden", () => {
  const viaR1 = "/ip4/198.18.0.11/tcp/20006/p2p/P_R1/p2p-circuit/p2p/P_B";
  const viaR2 = "/ip4/198.18.0.12/tcp/20006/p2p/P_R2/p2p-circuit/p2p/P_B";
  const connections = [
    conn("P_B", viaR2, 9), // the pre-warmed standby circuit, opened first
    conn("P_B", viaR1, 4),
    conn("P_C", "/ip4/198.18.1.12/tcp/20006", 0.3),
    conn("P_C", "/ip4/198.18.0.11/tcp/20006/p2p/P_R1/p2p-circuit/p2p/P_C"),
    conn("P_R1", "/ip4/198.18.0.11/tcp/20006", 1.2),
    conn("P_X", "/ip4/198.18.0.99/tcp/20006", 1), // no verified claim
    conn("P_R2", "/ip4/198.18.0.12/tcp/20006", 5, "closed"),
  ];
  const input = {
    connections,
    nodeOf: (p: string) => names[p],
    relayOrder: ["P_R1", "P_R2"],
    relayOnly: false,
    rtt: (p: string) => (p === "P_C" ? 0.21 : undefined), // a ping measured after the connection
  };
  assertEquals(peerViews(input).map((v) => [v.node, v.path, v.relay, v.rttMs]), [
    ["b", "tunnel-relay", "r1", 4],
    ["c", "tunnel-direct", null, 0.2],
    ["r1", "tunnel-direct", null, 1.2],
  ]);
  // After a failover r2 ranks first: the view follows.
  assertEquals(
    peerViews({ ...input, relayOrder: ["P_R2", "P_R1"] }).find((v) => v.node === "b")?.relay,
    "r2",
  );
  // relayOnly: streams to c take the circuit although a direct connection exists; relays
  // themselves are still reached directly.
  assertEquals(
    peerViews({ ...input, relayOnly: true }).map((v) => [v.node, v.path, v.relay]),
    [["b", "tunnel-relay", "r1"], ["c", "tunnel-relay", "r1"], ["r1", "tunnel-direct", null]],
  );
});
