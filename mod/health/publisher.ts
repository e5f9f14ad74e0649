/**
 * Publishes decisions as Node annotations — only on the group's one writer. A write happens
 * when the Node disagrees with the decision (state, group, group size, SuperEdge flag), at
 * most once per voteTimeout for the same decision while the store has not caught up; and,
 * when nothing changed, as a refresh once the last confirmation on the Node (its
 * `refreshedAt`, else `decidedAt`, whoever wrote it) or our own last write of the same
 * decision is `annotationRefreshMs` old. Readers treat annotations not refreshed in time as
 * absent, so a group that died entirely stops protecting its nodes.
 */

import type { StoreReader } from "../kube/mod.ts";
import type { Logger, LogRateLimiter } from "../log/mod.ts";
import {
  annotationAge,
  type AnnotationWriter,
  desiredAnnotations,
  type EdgeHealthAnnotation,
  edgeHealthOf,
  needsWrite,
} from "./annotations.ts";
import type { Group } from "./groups.ts";
import type { HealthMetrics } from "./metrics.ts";
import type { MemberDecision } from "./vote.ts";

export interface PublisherDeps {
  writer: AnnotationWriter;
  store: StoreReader;
  metrics: HealthMetrics;
  log: Logger;
  limiter: LogRateLimiter;
  now: () => number;
}

export interface PublisherOptions {
  voteTimeoutMs: number;
  /** An unchanged decision is rewritten (new `refreshedAt`) once its confirmation is this old. */
  annotationRefreshMs: number;
}

export class AnnotationPublisher {
  #written = new Map<string, { key: string; at: number }>();
  #writing?: Promise<void>;

  constructor(
    private readonly deps: PublisherDeps,
    private readonly options: PublisherOptions,
  ) {}

  /** Starts writing what differs or is due, unless a previous pass is still running. */
  publish(group: Group, decisions: ReadonlyMap<string, MemberDecision>, signal: AbortSignal): void {
    if (this.#writing || signal.aborted) return;
    this.#writing = this.#write(group, [...decisions.values()], signal).finally(
      () => (this.#writing = undefined),
    );
  }

  /** Resolves when the pass in progress (if any) ends. */
  async drain(): Promise<void> {
    await this.#writing;
  }

  async #write(g: Group, decisions: MemberDecision[], signal: AbortSignal): Promise<void> {
    const { writer, store, metrics, log, limiter } = this.deps;
    const now = this.deps.now();
    for (const d of decisions) {
      if (d.verdict === "unknown" || signal.aborted) continue;
      const node = store.get("nodes", undefined, d.node);
      const cur = edgeHealthOf(node);
      const a: EdgeHealthAnnotation = {
        state: d.verdict,
        healthy: d.healthy,
        unhealthy: d.unhealthy,
        members: g.members.length,
        group: g.name,
        // The same state keeps the time it was first decided, whoever wrote it.
        decidedAt: cur?.state === d.verdict && cur.decidedAt
          ? cur.decidedAt
          : new Date(d.decidedAt ?? now).toISOString(),
        refreshedAt: new Date(now).toISOString(),
      };
      const key = `${a.state}|${a.group}|${a.members}`;
      const w = this.#written.get(d.node);
      const ours = w && w.key === key ? w.at : -Infinity;
      let reason: "change" | "refresh";
      if (needsWrite(node, a)) {
        if (now - ours < this.options.voteTimeoutMs) continue; // the store has not caught up
        reason = "change";
      } else {
        // A confirmation stamped in our future (another writer's clock ahead) does not count.
        const age = cur ? annotationAge(cur, now).ageMs : NaN;
        const stored = age >= 0 ? now - age : -Infinity;
        if (now - Math.max(ours, stored) < this.options.annotationRefreshMs) continue;
        reason = "refresh";
      }
      try {
        await writer.patchNodeAnnotations(d.node, desiredAnnotations(a));
        this.#written.set(d.node, { key, at: now });
        metrics.writes.inc({ result: "ok", reason });
        const fields = { node: d.node, state: a.state, healthy: a.healthy, unhealthy: a.unhealthy };
        if (reason === "change") log.info("node annotated", fields);
        else log.debug("node annotation refreshed", fields);
      } catch (err) {
        // The API may be away (that is why we vote); the next vote retries.
        metrics.writes.inc({ result: "error", reason });
        if (limiter.allow(`write:${d.node}`) !== undefined) {
          log.warn("cannot annotate node", { node: d.node, reason, error: err });
        }
      }
    }
  }
}
