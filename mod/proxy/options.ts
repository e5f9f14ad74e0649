/** The proxy's options (mapped by main.ts from `modules.edgeProxy`) and their defaults. */

import type { RingOptions } from "../lb/mod.ts";

/** EdgeMesh's `serviceFilterMode`, applied to the label `service.edgemesh.kubeedge.io/service-proxy-name`. */
export type ServiceFilterMode = "FilterIfLabelExists" | "FilterIfLabelDoesNotExists";

export interface ProxyOptions {
  /** This node's name: endpoints on it take the `local` path and are preferred. */
  nodeName: string;
  /** Address the per-service-port listeners bind to. Default the bridge IP 169.254.96.16. */
  listenAddress: string;
  /**
   * IPv6 address for the listeners of services with IPv6 ClusterIPs (dual-stack). Unset (the
   * default): IPv6 ClusterIPs are not intercepted.
   */
  listenAddressV6?: string;
  /** Cross-node traffic inside a LAN takes the kernel path when reachable. Default true. */
  lanDirect: boolean;
  /** Default 3_600_000 (1 h). */
  tcpIdleTimeoutMs: number;
  /** Default 60_000. */
  udpIdleTimeoutMs: number;
  /** Default "FilterIfLabelExists" (skip labelled services, as EdgeMesh). */
  serviceFilterMode: ServiceFilterMode;
  /** Default 100 / 10 / 1.25 (EdgeMesh `loadBalancer.consistentHash`). */
  consistentHash: RingOptions;
  /** Install iptables rules sending ClusterIP:port and NodePorts to the listeners. Root. */
  intercept: boolean;
  /** Periodic iptables re-sync. Default 30_000. */
  syncIntervalMs: number;
  /** Connect timeout for one endpoint attempt (kernel or tunnel). Default 5000. */
  connectTimeoutMs: number;
  /** Time a direct LAN attempt gets before falling back to the tunnel. Default 1000. */
  lanConnectTimeoutMs: number;
  /** How long a LAN reachability verdict is remembered. Default 300_000. */
  lanVerdictTtlMs: number;
  /** Endpoints tried per connection before giving up. Default 3. */
  maxConnectAttempts: number;
  /**
   * Relay buffer per direction for bulk transfer, 64–256 KiB. Default 262144 (1.5× the
   * throughput of 64 KiB on loopback). Connections start on a pooled 16 KiB buffer and take a
   * pooled buffer of this size once a read fills the small one.
   */
  relayBufferBytes: number;
  /** Bound on concurrent UDP flows per service port. Default 1024. */
  udpMaxFlows: number;
  /** Time open connections get to finish on stop before being closed. Default 2000. */
  drainTimeoutMs: number;
}

export const DEFAULT_PROXY_OPTIONS: Readonly<Omit<ProxyOptions, "nodeName">> = Object.freeze({
  listenAddress: "169.254.96.16",
  lanDirect: true,
  tcpIdleTimeoutMs: 3_600_000,
  udpIdleTimeoutMs: 60_000,
  serviceFilterMode: "FilterIfLabelExists",
  consistentHash: Object.freeze({ partitionCount: 100, replicationFactor: 10, load: 1.25 }),
  intercept: false,
  syncIntervalMs: 30_000,
  connectTimeoutMs: 5000,
  lanConnectTimeoutMs: 1000,
  lanVerdictTtlMs: 300_000,
  maxConnectAttempts: 3,
  relayBufferBytes: 262144,
  udpMaxFlows: 1024,
  drainTimeoutMs: 2000,
});

/** Fills defaults and clamps the buffer into 64–256 KiB. */
export function resolveProxyOptions(o: Partial<ProxyOptions> & { nodeName: string }): ProxyOptions {
  const r: ProxyOptions = {
    ...DEFAULT_PROXY_OPTIONS,
    ...o,
    consistentHash: { ...DEFAULT_PROXY_OPTIONS.consistentHash, ...o.consistentHash },
  };
  r.relayBufferBytes = Math.min(262144, Math.max(65536, r.relayBufferBytes));
  return r;
}
