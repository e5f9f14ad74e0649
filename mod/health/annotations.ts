/**
 * Node annotations written by a group's one writer: ours (`edgemesh.kubeedge.io/edge-health`,
 * JSON) and SuperEdge's `nodeunhealth: "yes"` while unhealthy (removed otherwise).
 */

import type { Node } from "../kube/mod.ts";
import type { Decided } from "./vote.ts";

export const EDGE_HEALTH_ANNOTATION = "edgemesh.kubeedge.io/edge-health";
export const NODE_UNHEALTH_ANNOTATION = "nodeunhealth";

export interface EdgeHealthAnnotation {
  state: Decided;
  healthy: number;
  unhealthy: number;
  members: number;
  /** Unit name, or "*" when all nodes check all nodes. */
  group: string;
  /** RFC 3339. */
  decidedAt: string;
}

/** Writes annotations through the API (the lead wires the metaserver PATCH). */
export interface AnnotationWriter {
  /** Merge-patches `metadata.annotations`; a null value removes the key. */
  patchNodeAnnotations(node: string, annotations: Record<string, string | null>): Promise<void>;
}

/** Parses our annotation; undefined when absent or not ours. */
export function parseEdgeHealth(value: string | undefined): EdgeHealthAnnotation | undefined {
  if (!value) return undefined;
  let v: Partial<EdgeHealthAnnotation>;
  try {
    v = JSON.parse(value);
  } catch {
    // Not JSON: an older plain "healthy"/"unhealthy" value is still understood.
    return value === "healthy" || value === "unhealthy"
      ? { state: value, healthy: 0, unhealthy: 0, members: 0, group: "", decidedAt: "" }
      : undefined;
  }
  if (typeof v !== "object" || v === null || (v.state !== "healthy" && v.state !== "unhealthy")) {
    return undefined;
  }
  return {
    state: v.state,
    healthy: Number(v.healthy) || 0,
    unhealthy: Number(v.unhealthy) || 0,
    members: Number(v.members) || 0,
    group: String(v.group ?? ""),
    decidedAt: String(v.decidedAt ?? ""),
  };
}

export function edgeHealthOf(node: Node | undefined): EdgeHealthAnnotation | undefined {
  return parseEdgeHealth(node?.metadata.annotations?.[EDGE_HEALTH_ANNOTATION]);
}

/** The annotation patch for a decision. */
export function desiredAnnotations(a: EdgeHealthAnnotation): Record<string, string | null> {
  return {
    [EDGE_HEALTH_ANNOTATION]: JSON.stringify(a),
    [NODE_UNHEALTH_ANNOTATION]: a.state === "unhealthy" ? "yes" : null,
  };
}

/**
 * True when the node's annotations disagree with the decision in what matters (state, group,
 * group size, SuperEdge flag). Vote counts alone changing do not cause a write.
 */
export function needsWrite(node: Node | undefined, a: EdgeHealthAnnotation): boolean {
  const cur = edgeHealthOf(node);
  const flag = node?.metadata.annotations?.[NODE_UNHEALTH_ANNOTATION];
  if (!cur || cur.state !== a.state || cur.group !== a.group || cur.members !== a.members) {
    return true;
  }
  return a.state === "unhealthy" ? flag !== "yes" : flag !== undefined;
}
