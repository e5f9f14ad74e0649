/**
 * Groups (SuperEdge NodeUnits): ConfigMap `kube-system/edge-health-config` with
 * `unit-internal-check` ("true"/"false") and `check-units` (comma-separated), and the node
 * label `<unit>: nodeunits.superedge.io`. With unit checking on, a node's group is the
 * lowest-named checked unit it belongs to (a node in no checked unit is in no group); with it
 * off, every node is in the one group "*".
 */

import type { Node, StoreReader } from "../kube/mod.ts";

export const HEALTH_CONFIG_NAMESPACE = "kube-system";
export const HEALTH_CONFIG_NAME = "edge-health-config";
export const NODE_UNIT_LABEL_VALUE = "nodeunits.superedge.io";
export const ALL_NODES_GROUP = "*";

export interface GroupConfig {
  unitInternalCheck: boolean;
  /** Units checked; empty means every unit found on node labels. */
  checkUnits: string[];
}

export interface Group {
  name: string;
  /** Sorted node names. */
  members: string[];
}

export function readGroupConfig(
  store: StoreReader,
  namespace = HEALTH_CONFIG_NAMESPACE,
): GroupConfig {
  const cm = store.get("configmaps", namespace, HEALTH_CONFIG_NAME);
  const check = (cm?.data?.["unit-internal-check"] ?? "").trim().toLowerCase();
  const units = (cm?.data?.["check-units"] ?? "").split(",").map((u) => u.trim()).filter((u) =>
    u.length > 0
  );
  return { unitInternalCheck: check === "true", checkUnits: units };
}

/** Units a node belongs to, sorted. */
export function unitsOf(node: Node): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(node.metadata.labels ?? {})) {
    if (v === NODE_UNIT_LABEL_VALUE) out.push(k);
  }
  return out.sort();
}

function unitFor(node: Node, config: GroupConfig): string | undefined {
  const checked = config.checkUnits.length ? new Set(config.checkUnits) : undefined;
  return unitsOf(node).find((u) => !checked || checked.has(u));
}

/** The group of `nodeName`, or undefined when it is not checked at all. */
export function groupOf(
  nodeName: string,
  nodes: readonly Node[],
  config: GroupConfig,
): Group | undefined {
  const self = nodes.find((n) => n.metadata.name === nodeName);
  if (!self) return undefined;
  if (!config.unitInternalCheck) {
    return { name: ALL_NODES_GROUP, members: nodes.map((n) => n.metadata.name).sort() };
  }
  const unit = unitFor(self, config);
  if (unit === undefined) return undefined;
  const members = nodes.filter((n) => unitFor(n, config) === unit).map((n) => n.metadata.name)
    .sort();
  return { name: unit, members };
}

/** 8-byte digest of a group (name and sorted members): peers must agree on it to compare rows. */
export async function groupHash(group: Group): Promise<Uint8Array> {
  const text = `${group.name}\n${group.members.join("\n")}`;
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return new Uint8Array(d, 0, 8).slice();
}

/** The cloud's Ready condition of a node, if any. */
export function cloudReady(node: Node | undefined): "True" | "False" | "Unknown" | undefined {
  return node?.status?.conditions?.find((c) => c.type === "Ready")?.status;
}

/** The node's InternalIP (else its first address), from status.addresses. */
export function internalIP(node: Node | undefined): string | undefined {
  const addrs = node?.status?.addresses ?? [];
  return addrs.find((a) => a.type === "InternalIP")?.address ?? addrs[0]?.address;
}
