/** Small readings of Node objects shared by proxy, DNS, gateway and the agent. */

import type { StoreReader } from "./store.ts";

/**
 * True when the cloud says the node is not Ready (its Ready condition is False or Unknown).
 * A node without a Ready condition, or unknown to the store, is not "not ready".
 */
export function nodeCloudNotReady(store: Pick<StoreReader, "get">, node: string): boolean {
  const ready = store.get("nodes", undefined, node)?.status?.conditions?.find((c) =>
    c.type === "Ready"
  );
  return !!ready && ready.status !== "True";
}
