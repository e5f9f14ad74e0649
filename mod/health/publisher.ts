/**
 * Publishes decisions as Node annotations — only on the group's one writer. A write happens
 * when the Node disagrees with the decision (state, group, group size, SuperEdge flag), at
 * most once per voteTimeout for the same decision while the store has not caught up.
 */

import type { StoreReader } from "../kube/mod.ts";
import type { Logger, LogRateLimiter } from "../log/mod.ts";
import {
  type AnnotationWriter,
  desiredAnnotations,
  type EdgeHealthAnnotation,
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

export class AnnotationPublisher {
  #written = new Map<string, { key: string; at: number }>();
  #writing?: Promise<void>;

  constructor(
    private readonly deps: PublisherDeps,
    private readonly options: { voteTimeoutMs: number },
  ) {}

  /** Starts writing what differs, unless a previous pass is still running. */
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
      const a: EdgeHealthAnnotation = {
        state: d.verdict,
        healthy: d.healthy,
        unhealthy: d.unhealthy,
        members: g.members.length,
        group: g.name,
        decidedAt: new Date(d.decidedAt ?? now).toISOString(),
      };
      const key = `${a.state}|${a.group}|${a.members}`;
      const w = this.#written.get(d.node);
      if (w && w.key === key && now - w.at < this.options.voteTimeoutMs) continue;
      if (!needsWrite(store.get("nodes", undefined, d.node), a)) continue;
      try {
        await writer.patchNodeAnnotations(d.node, desiredAnnotations(a));
        this.#written.set(d.node, { key, at: now });
        metrics.writes.inc({ result: "ok" });
        log.info("node annotated", {
          node: d.node,
          state: a.state,
          healthy: a.healthy,
          unhealthy: a.unhealthy,
        });
      } catch (err) {
        // The API may be away (that is why we vote); the next vote retries.
        metrics.writes.inc({ result: "error" });
        if (limiter.allow(`write:${d.node}`) !== undefined) {
          log.warn("cannot annotate node", { node: d.node, error: err });
        }
      }
    }
  }
}
