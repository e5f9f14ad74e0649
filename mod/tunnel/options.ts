/** Settings of the tunnel, its injected dependencies, and the defaults. */

import type { Logger } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import type { CertIdentity } from "./attest.ts";

/** A relay listed in `modules.edgeTunnel.relayNodes`. */
export interface RelayNode {
  nodeName: string;
  /** Multiaddrs (`/ip4/203.0.113.7/tcp/20006`) or `host:port` / bare IPs (then `listenPort`). */
  advertiseAddress: string[];
}

/**
 * The receiving side's authorization: is `ip:port` an endpoint this node may be asked to
 * dial? The lead wires it to the catalog (endpoints on this node, own addresses on allowed
 * ports). The tunnel dials nothing else.
 */
export interface LocalTargets {
  allowed(ip: string, port: number, protocol: "tcp" | "udp"): boolean;
}

/** Mirrors `modules.edgeTunnel` (durations in milliseconds). */
export interface TunnelOptions {
  /** This node's name (cluster Node name). */
  nodeName: string;
  /** IPs to listen on (`0.0.0.0` for all), or full multiaddrs. */
  listenAddresses: string[];
  /** TCP port (default 20006); 0 picks a free port. */
  listenPort: number;
  /** Directory for the identity key and pinned bindings (created if missing). */
  stateDir: string;
  /** Names the mDNS service and the DHT protocol prefix. */
  rendezvous: string;
  relayNodes: RelayNode[];
  /** Multiaddrs dialed at start and on every finder round. */
  bootstrapPeers: string[];
  mdns: boolean;
  /** Raw bytes of the PSK file (validated by the caller), or undefined when PSK is off. */
  psk?: Uint8Array;
  /**
   * KubeEdge node certificate, key and CA (`modules.edgeTunnel.identity`, PEM files), loaded
   * at start (an unusable one fails the start). Our claim is signed with the certificate too,
   * and every claim accepted must carry a certificate of the same CA naming its node; a node
   * with a new key but a valid certificate replaces its pinned peer ID. Unset: claims are
   * bound by trust on first use only.
   */
  identity?: CertIdentity;
  /** How often the identity files are checked for a rotated certificate (60000). */
  identityCheckMs?: number;
  /**
   * Upgrade relayed connections to direct ones with our coordinated TCP hole punch
   * (`/edgemesh/punch/1.0.0`, punch.ts). False: never punched (symmetric NATs, strict firewalls).
   */
  enableHolePunch: boolean;
  /** Local TCP port hole punches are made from (0: a free port per punch; default 0). */
  holePunchPort?: number;
  /** How long both sides keep trying to connect in one punch (5000). */
  holePunchWindowMs?: number;
  /** First retry delay after a failed punch, doubling up to 5 min (5000). */
  holePunchBackoffMs?: number;
  /**
   * Carry every stream to another node through a relay, never over a direct connection
   * (troubleshooting, or networks where direct paths between nodes must not be used).
   * Relays themselves are still dialled directly. Default false.
   */
  relayOnly?: boolean;
  /** Reservation refresh and claim gossip period (EdgeMesh `heartbeatPeriod`, 120 s). */
  heartbeatPeriodMs: number;
  /** Peer discovery period: bootstrap redial, DHT walk (EdgeMesh `finderPeriod`, 60 s). */
  finderPeriodMs: number;
  /** Cap on relay candidates kept and probed (EdgeMesh `maxCandidates`, 15). */
  maxCandidates: number;
  /** Cluster Node names; claims for any other name are refused. */
  knownNodes: () => Set<string>;
  /** How often relays are pinged and re-ranked (default 10 s). */
  relayProbePeriodMs?: number;
  /**
   * Connection-monitor ping interval (1000). The primary and standby relays are also pinged
   * every quarter of it; one that misses a ping for a whole interval while sending us no bytes
   * at all is dropped, so a hung relay is left within about 1.25 intervals, a busy one never.
   */
  monitorPingIntervalMs?: number;
  /** Default dial timeout when the caller gives none (5000). */
  dialTimeoutMs?: number;
  /** Limit for reading a proxy header or reply (5000). */
  headerTimeoutMs?: number;
  /** A relayed UDP channel with no datagram in either direction for this long closes (60 s). */
  udpIdleTimeoutMs?: number;
  /**
   * With no `relayNodes`, a node that peers outside its LAN can dial back offers relay service
   * on its own, and others use it (default true). Listed relays check the same way and stop
   * relaying while not reachable.
   */
  selfRelay?: boolean;
  /** How often reachability is checked again by dial-backs (default 5 min). */
  reachabilityPeriodMs?: number;
}

/** Hooks for tests; production leaves them unset. */
export interface TunnelTestHooks {
  /** Replaces the libp2p ping RTT measurement of a relay (ranking and liveness pings). */
  measureRtt?: (relayNode: string, measured: () => Promise<number>) => Promise<number>;
  /** Refuse dialing a multiaddr (simulates a NAT/firewall between two nodes). */
  denyDialAddress?: (multiaddr: string) => boolean;
  /** Send only our own claim in exchanges (so that other nodes are found in the DHT only). */
  noClaimForwarding?: boolean;
  /** Same-LAN test for peer IPs in reachability checks (default: this host's networks). */
  isLocalNetwork?: (ip: string) => boolean;
}

export interface TunnelDeps {
  logger: Logger;
  metrics: Registry;
  localTargets: LocalTargets;
  /** Wall clock for claim timestamps (default `Date.now`). */
  now?: () => number;
  hooks?: TunnelTestHooks;
}

export const TUNNEL_DEFAULTS = {
  listenPort: 20006,
  rendezvous: "EDGEMESH_PLAYGOUND",
  heartbeatPeriodMs: 120_000,
  finderPeriodMs: 60_000,
  maxCandidates: 15,
  relayProbePeriodMs: 10_000,
  monitorPingIntervalMs: 1000,
  dialTimeoutMs: 5000,
  headerTimeoutMs: 5000,
  udpIdleTimeoutMs: 60_000,
  holePunchPort: 0,
  holePunchWindowMs: 5000,
  holePunchBackoffMs: 5000,
  reachabilityPeriodMs: 300_000,
  identityCheckMs: 60_000,
} as const;

export type ResolvedTunnelOptions = Required<Omit<TunnelOptions, "psk" | "identity">> & {
  psk?: Uint8Array;
  identity?: CertIdentity;
};

export function resolveOptions(o: TunnelOptions): ResolvedTunnelOptions {
  return {
    ...o,
    relayProbePeriodMs: o.relayProbePeriodMs ?? TUNNEL_DEFAULTS.relayProbePeriodMs,
    monitorPingIntervalMs: o.monitorPingIntervalMs ?? TUNNEL_DEFAULTS.monitorPingIntervalMs,
    dialTimeoutMs: o.dialTimeoutMs ?? TUNNEL_DEFAULTS.dialTimeoutMs,
    headerTimeoutMs: o.headerTimeoutMs ?? TUNNEL_DEFAULTS.headerTimeoutMs,
    udpIdleTimeoutMs: o.udpIdleTimeoutMs ?? TUNNEL_DEFAULTS.udpIdleTimeoutMs,
    relayOnly: o.relayOnly ?? false,
    holePunchPort: o.holePunchPort ?? TUNNEL_DEFAULTS.holePunchPort,
    holePunchWindowMs: o.holePunchWindowMs ?? TUNNEL_DEFAULTS.holePunchWindowMs,
    holePunchBackoffMs: o.holePunchBackoffMs ?? TUNNEL_DEFAULTS.holePunchBackoffMs,
    selfRelay: o.selfRelay ?? true,
    reachabilityPeriodMs: o.reachabilityPeriodMs ?? TUNNEL_DEFAULTS.reachabilityPeriodMs,
    identityCheckMs: o.identityCheckMs ?? TUNNEL_DEFAULTS.identityCheckMs,
  };
}
