/** Dependencies and status shapes of the Health service. */

import type { Dialer, Verdict } from "../contracts/mod.ts";
import type { StoreReader } from "../kube/mod.ts";
import type { ServiceStatus } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import type { AnnotationWriter } from "./annotations.ts";
import type { PeerAddress } from "./gossip.ts";
import type { HealthIdentity, PeerKeyLookup } from "./identity.ts";
import type { CloudEffect } from "./vote.ts";

export interface HealthClock {
  now(): number;
}

export interface HealthDeps {
  logger: Logger;
  metrics: Registry;
  /** Nodes (labels, conditions, addresses, annotations) and the edge-health-config ConfigMap. */
  store: StoreReader;
  identity: HealthIdentity;
  writer: AnnotationWriter;
  /** Node → key from the tunnel's signed claims; otherwise keys are pinned on first use. */
  peerKey?: PeerKeyLookup;
  /** Wall clock in ms (timestamps, freshness). Default Date.now. */
  clock?: HealthClock;
  /** Where a peer's health agent listens. Default: its InternalIP and our listenPort. */
  resolveAddress?: (node: string) => PeerAddress | undefined;
  /** Randomness for peer sampling. Default Math.random. */
  random?: () => number;
  /** Namespace of `edge-health-config`. Default "kube-system". */
  configNamespace?: string;
  /**
   * The tunnel, for members not reachable directly: probes and exchanges that fail directly
   * are retried through it to the member's node, aimed at its health address and port (its
   * tunnel must allow that port). Without it, health is direct only.
   */
  dialer?: Dialer;
}

export interface MemberStatus {
  node: string;
  verdict: Verdict;
  /** Fresh "ok" and "fail" verdicts counted in the last vote. */
  healthy: number;
  unhealthy: number;
  /** RFC 3339, null while unknown. */
  decidedAt: string | null;
  cloudReady: "True" | "False" | "Unknown" | null;
  /** The decision table with the cloud. */
  effect: CloudEffect;
  /** Our own last probe of it. */
  probe: "ok" | "fail" | null;
  /** How that probe went (the path of its success, else of its last attempt). */
  probePath: "direct" | "tunnel" | null;
}

export interface HealthStatus extends ServiceStatus {
  /** Unit name, "*" (all nodes), or "" when this node is in no checked group. */
  group: string;
  members: MemberStatus[];
  /** The group's annotation writer as this node sees it. */
  writer: string | null;
}
