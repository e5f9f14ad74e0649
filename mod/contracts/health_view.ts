/** The health view: the group's verdict on each node, read by proxy, DNS and gateway. */

export type Verdict = "healthy" | "unhealthy" | "unknown";

export interface HealthView {
  verdict(node: string): Verdict;
  /** Called with the node whose verdict changed. Returns an unsubscribe function. */
  onChange(listener: (node: string, verdict: Verdict) => void): () => void;
}

/** A view that knows nothing: every node "unknown" (health module disabled). */
export const UNKNOWN_HEALTH: HealthView = {
  verdict: () => "unknown",
  onChange: () => () => {},
};

/**
 * The serving rule of CONTRACTS.md: an endpoint is served when (it is ready AND its node is
 * not voted unhealthy) OR (it is not ready only because its node's cloud Ready is
 * False/Unknown AND its node is voted healthy).
 */
export function endpointServed(
  ep: { ready: boolean; nodeName?: string },
  health: HealthView,
  nodeCloudNotReady: (node: string) => boolean,
): boolean {
  const v = ep.nodeName ? health.verdict(ep.nodeName) : "unknown";
  if (ep.ready) return v !== "unhealthy";
  return !!ep.nodeName && v === "healthy" && nodeCloudNotReady(ep.nodeName);
}
