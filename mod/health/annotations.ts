/**
 * Node annotations written by a group's one writer: ours (`edgemesh.kubeedge.io/edge-health`,
 * JSON) and SuperEdge's `nodeunhealth: "yes"` while unhealthy (removed otherwise).
 *
 * A decision is only as good as its last confirmation: the writer rewrites `refreshedAt`
 * periodically, and readers treat an annotation whose `refreshedAt` (or `decidedAt`, for
 * annotations of older agents without `refreshedAt`) is too old as absent — otherwise a
 * NodeUnit that lost power would keep its last "healthy" forever.
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
  /** RFC 3339: when the group reached this state. */
  decidedAt: string;
  /**
   * RFC 3339: when a writer last confirmed the decision (rewritten at least every
   * `annotationRefreshMs`). Absent in annotations written by older agents.
   */
  refreshedAt?: string;
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
  const a: EdgeHealthAnnotation = {
    state: v.state,
    healthy: Number(v.healthy) || 0,
    unhealthy: Number(v.unhealthy) || 0,
    members: Number(v.members) || 0,
    group: String(v.group ?? ""),
    decidedAt: String(v.decidedAt ?? ""),
  };
  if (v.refreshedAt !== undefined && v.refreshedAt !== null) a.refreshedAt = String(v.refreshedAt);
  return a;
}

/** How old an annotation's last confirmation is. */
export interface AnnotationAge {
  /** The field the age comes from: `refreshedAt`, else (older agents) `decidedAt`. */
  field: "refreshedAt" | "decidedAt";
  /** Its raw value ("" when absent). */
  value: string;
  /** `now` minus that time in ms; negative when it lies in the future; NaN when unparseable. */
  ageMs: number;
}

/** The age of the annotation's last confirmation at `now` (ms). */
export function annotationAge(a: EdgeHealthAnnotation, now: number): AnnotationAge {
  const field = a.refreshedAt !== undefined ? "refreshedAt" : "decidedAt";
  const value = a[field] ?? "";
  // RFC 3339 only: Date.parse alone would also take "1" or "Nov 22".
  const at = /^\d{4}-\d\d-\d\dT/.test(value) ? Date.parse(value) : NaN;
  return { field, value, ageMs: now - at };
}

/**
 * True when the confirmation is too old to be trusted: older than `maxAgeMs`, unparseable or
 * absent, or more than `maxAgeMs` in the future (a writer's clock far ahead must not buy a
 * dead group extra time beyond that).
 */
export function isStale(age: AnnotationAge, maxAgeMs: number): boolean {
  return !(Math.abs(age.ageMs) <= maxAgeMs);
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
