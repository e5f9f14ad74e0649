/**
 * The vote, pure: fresh verdicts of the group's members about each member, counted against a
 * strict majority of the group's size. No majority of fresh verdicts → the last decision
 * stands. Time is an input, so partition tables run without clocks.
 */

/** Verdict states as carried on the wire. */
export const NONE = 0;
export const OK = 1;
export const FAIL = 2;
export type ObservationState = typeof NONE | typeof OK | typeof FAIL;

/**
 * One observer's latest verdicts, aligned with the sorted member list: `states[i]` and
 * `observedAt[i]` (ms) are about `members[i]`.
 */
export interface ObserverRow {
  observer: string;
  states: Uint8Array;
  observedAt: Float64Array;
}

export type Decided = "healthy" | "unhealthy";

export interface MemberDecision {
  node: string;
  /** The standing decision; "unknown" until a majority ever agreed. */
  verdict: Decided | "unknown";
  /** Fresh "ok" / "fail" verdicts counted in the last vote. */
  healthy: number;
  unhealthy: number;
  /** What a fresh majority says now, if any. */
  majority?: Decided;
  /** When `verdict` last changed (ms), absent while unknown. */
  decidedAt?: number;
}

export interface VoteInput {
  /** The group, sorted; its size is the denominator. */
  members: readonly string[];
  rows: Iterable<ObserverRow>;
  now: number;
  voteTimeoutMs: number;
  /** Decisions of the previous vote, by node. */
  previous?: ReadonlyMap<string, MemberDecision>;
}

export interface VoteResult {
  decisions: Map<string, MemberDecision>;
  /** Nodes whose `verdict` changed compared with `previous`. */
  changed: string[];
  /** Members a fresh majority votes healthy now, sorted. */
  freshHealthy: string[];
}

/** Votes needed: a strict majority of the group's size. */
export function majorityOf(size: number): number {
  return Math.floor(size / 2) + 1;
}

export function vote(input: VoteInput): VoteResult {
  const { members, now, voteTimeoutMs } = input;
  const n = members.length;
  const okCount = new Uint32Array(n);
  const failCount = new Uint32Array(n);
  const memberSet = new Set(members);
  const seen = new Set<string>();
  const oldest = now - voteTimeoutMs;
  for (const row of input.rows) {
    // Each member observer counts once; rows must be aligned with `members`.
    if (!memberSet.has(row.observer) || seen.has(row.observer)) continue;
    if (row.states.length !== n || row.observedAt.length !== n) continue;
    seen.add(row.observer);
    for (let i = 0; i < n; i++) {
      const s = row.states[i];
      if (s === NONE) continue;
      const at = row.observedAt[i];
      if (!(at > oldest) || at > now + voteTimeoutMs) continue;
      if (s === OK) okCount[i]++;
      else if (s === FAIL) failCount[i]++;
    }
  }
  const need = majorityOf(n);
  const decisions = new Map<string, MemberDecision>();
  const changed: string[] = [];
  const freshHealthy: string[] = [];
  for (let i = 0; i < n; i++) {
    const node = members[i];
    const prev = input.previous?.get(node);
    const majority: Decided | undefined = okCount[i] >= need
      ? "healthy"
      : failCount[i] >= need
      ? "unhealthy"
      : undefined;
    const verdict = majority ?? prev?.verdict ?? "unknown";
    const decidedAt = verdict !== "unknown" && verdict === prev?.verdict
      ? prev.decidedAt
      : majority
      ? now
      : undefined;
    if (verdict !== (prev?.verdict ?? "unknown")) changed.push(node);
    if (majority === "healthy") freshHealthy.push(node);
    decisions.set(node, {
      node,
      verdict,
      healthy: okCount[i],
      unhealthy: failCount[i],
      majority,
      decidedAt,
    });
  }
  // Nodes that left the group become unknown.
  for (const [node, prev] of input.previous ?? []) {
    if (!memberSet.has(node) && prev.verdict !== "unknown") changed.push(node);
  }
  freshHealthy.sort();
  return { decisions, changed, freshHealthy };
}

/**
 * The one annotation writer of a group: the lowest-named member a fresh majority votes
 * healthy. `self` writes only when it is that node (so a node that cannot see a majority,
 * and therefore is not in `freshHealthy`, writes nothing).
 */
export function writerOf(freshHealthy: readonly string[]): string | undefined {
  let w: string | undefined;
  for (const n of freshHealthy) if (w === undefined || n < w) w = n;
  return w;
}

export type CloudReady = "True" | "False" | "Unknown";

/**
 * The decision table with the cloud:
 * | peers say | cloud Ready | effect |
 * | healthy | True | normal |
 * | healthy | False/Unknown | keep (keep Pods and endpoints, no new scheduling) |
 * | unhealthy | True | normal (cloud wins) |
 * | unhealthy | False/Unknown | evict (standard Kubernetes eviction) |
 * Without a group verdict the cloud alone decides: normal or evict.
 */
export type CloudEffect = "normal" | "keep" | "evict";

export function cloudEffect(
  verdict: Decided | "unknown",
  ready: CloudReady | undefined,
): CloudEffect {
  if (ready === "True") return "normal";
  if (ready === undefined) return verdict === "unhealthy" ? "evict" : "normal";
  return verdict === "healthy" ? "keep" : "evict";
}

/** Convenience for tests and benchmarks: rows from `observer → target → {ok, observedAt}`. */
export function rowsFromMaps(
  members: readonly string[],
  verdicts: Record<string, Record<string, { ok: boolean; observedAt: number }>>,
): ObserverRow[] {
  const index = new Map(members.map((m, i) => [m, i]));
  const rows: ObserverRow[] = [];
  for (const [observer, targets] of Object.entries(verdicts)) {
    const states = new Uint8Array(members.length);
    const observedAt = new Float64Array(members.length);
    for (const [target, v] of Object.entries(targets)) {
      const i = index.get(target);
      if (i === undefined) continue;
      states[i] = v.ok ? OK : FAIL;
      observedAt[i] = v.observedAt;
    }
    rows.push({ observer, states, observedAt });
  }
  return rows;
}
