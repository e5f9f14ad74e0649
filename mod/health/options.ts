/** Options of the health module; fields mirror `modules.edgeHealth` of CONTRACTS.md. */

import { HealthOptionsError } from "./errors.ts";

export interface HealthOptions {
  /** This node's name (must be a Node in the cluster store to be part of a group). */
  nodeName: string;
  /** Address the probe/gossip HTTP server binds. Default "0.0.0.0". */
  listenAddress?: string;
  /** Default 51005; 0 picks a free port (tests), read back with `Health.port`. */
  listenPort?: number;
  /** Probe round period. Default 10000. */
  probeIntervalMs?: number;
  /** Per attempt (TCP connect + GET). Default 2000. */
  probeTimeoutMs?: number;
  /** Extra attempts after a failed one within a round. Default 2. */
  probeRetries?: number;
  /** Verdicts and messages older than this do not count. Default 3 × probeIntervalMs. */
  voteTimeoutMs?: number;
  /** Kubelet/edgecore TCP port also probed when > 0. Default 0 (not probed). */
  kubeletPort?: number;
  /** Where pinned peer keys are kept; "" keeps them in memory only. */
  stateDir?: string;
  /**
   * Peers contacted per round to push our digest and pull missing ones. Default: every
   * other member up to 16 members, else ceil(log2 N) + 2. Not a config key of CONTRACTS.md.
   */
  fanout?: number;
  /** Concurrent probes per round. Default 64. */
  probeConcurrency?: number;
  /**
   * The group's writer rewrites an unchanged annotation (new `refreshedAt`) once its last
   * confirmation is this old; checked at every vote, so consecutive refreshes are between
   * this and this + probeIntervalMs apart. Must be >= probeIntervalMs and well below the
   * webhook's `maxAnnotationAgeMs` (default 5 min). Default 60000.
   */
  annotationRefreshMs?: number;
}

export type ResolvedHealthOptions = Required<Omit<HealthOptions, "fanout">> & { fanout?: number };

export const HEALTH_DEFAULTS = {
  listenAddress: "0.0.0.0",
  listenPort: 51005,
  probeIntervalMs: 10_000,
  probeTimeoutMs: 2_000,
  probeRetries: 2,
  kubeletPort: 0,
  stateDir: "",
  probeConcurrency: 64,
  annotationRefreshMs: 60_000,
} as const;

/** Fills defaults and validates; throws HealthOptionsError listing every problem. */
export function resolveHealthOptions(o: HealthOptions): ResolvedHealthOptions {
  const probeIntervalMs = o.probeIntervalMs ?? HEALTH_DEFAULTS.probeIntervalMs;
  const r: ResolvedHealthOptions = {
    nodeName: o.nodeName,
    listenAddress: o.listenAddress ?? HEALTH_DEFAULTS.listenAddress,
    listenPort: o.listenPort ?? HEALTH_DEFAULTS.listenPort,
    probeIntervalMs,
    probeTimeoutMs: o.probeTimeoutMs ?? HEALTH_DEFAULTS.probeTimeoutMs,
    probeRetries: o.probeRetries ?? HEALTH_DEFAULTS.probeRetries,
    voteTimeoutMs: o.voteTimeoutMs ?? 3 * probeIntervalMs,
    kubeletPort: o.kubeletPort ?? HEALTH_DEFAULTS.kubeletPort,
    stateDir: o.stateDir ?? HEALTH_DEFAULTS.stateDir,
    probeConcurrency: o.probeConcurrency ?? HEALTH_DEFAULTS.probeConcurrency,
    annotationRefreshMs: o.annotationRefreshMs ?? HEALTH_DEFAULTS.annotationRefreshMs,
    fanout: o.fanout,
  };
  const p: string[] = [];
  if (!r.nodeName) p.push("nodeName: required");
  else if (new TextEncoder().encode(r.nodeName).length > 253) {
    p.push("nodeName: longer than 253 bytes");
  }
  const port = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 0 || v > 65535) p.push(`${name}: ${v} is not a port`);
  };
  port("modules.edgeHealth.listenPort", r.listenPort);
  port("modules.edgeHealth.kubeletPort", r.kubeletPort);
  const positive = (name: string, v: number) => {
    if (!Number.isFinite(v) || v <= 0) p.push(`${name}: ${v} must be > 0`);
  };
  positive("modules.edgeHealth.probeInterval", r.probeIntervalMs);
  positive("modules.edgeHealth.probeTimeout", r.probeTimeoutMs);
  positive("modules.edgeHealth.voteTimeout", r.voteTimeoutMs);
  if (!Number.isInteger(r.probeRetries) || r.probeRetries < 0) {
    p.push(`modules.edgeHealth.probeRetries: ${r.probeRetries} must be an integer >= 0`);
  }
  if (r.voteTimeoutMs < r.probeIntervalMs) {
    p.push(
      `modules.edgeHealth.voteTimeout: ${r.voteTimeoutMs} ms is shorter than probeInterval ` +
        `${r.probeIntervalMs} ms, verdicts would expire between rounds (use >= 2 × probeInterval)`,
    );
  }
  positive("modules.edgeHealth.annotationRefresh", r.annotationRefreshMs);
  if (r.annotationRefreshMs > 0 && r.annotationRefreshMs < r.probeIntervalMs) {
    p.push(
      `modules.edgeHealth.annotationRefresh: ${r.annotationRefreshMs} ms is shorter than ` +
        `probeInterval ${r.probeIntervalMs} ms (a refresh per node per round at most is plenty)`,
    );
  }
  if (r.fanout !== undefined && (!Number.isInteger(r.fanout) || r.fanout < 1)) {
    p.push(`fanout: ${r.fanout} must be an integer >= 1`);
  }
  if (!Number.isInteger(r.probeConcurrency) || r.probeConcurrency < 1) {
    p.push(`probeConcurrency: ${r.probeConcurrency} must be an integer >= 1`);
  }
  if (p.length) throw new HealthOptionsError(p);
  return r;
}

/** Peers contacted per round for a group of `members` nodes (see HealthOptions.fanout). */
export function effectiveFanout(members: number, fanout?: number): number {
  const others = Math.max(0, members - 1);
  const f = fanout ?? (members <= 16 ? others : Math.ceil(Math.log2(members)) + 2);
  return Math.min(others, f);
}
