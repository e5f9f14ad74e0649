/** A source that lists and watches every kind from a Kubernetes API (metaserver or cluster). */

import type { Logger } from "../log/mod.ts";
import { type Sleep, TokenBucket } from "./backoff.ts";
import { Reflector, type ReflectorMetrics, type ReflectorOptions } from "./reflector.ts";
import type { ClusterSource, SourceStatus } from "./source.ts";
import type { ClusterStore } from "./store.ts";
import type { KubeTransport } from "./transport.ts";
import { type Kind, KINDS } from "./types.ts";

export interface ApiSourceDeps {
  transport: KubeTransport;
  store: ClusterStore;
  logger: Logger;
  metrics?: ReflectorMetrics;
  sleep?: Sleep;
  random?: () => number;
  now?: () => number;
}

export interface ApiSourceOptions extends ReflectorOptions {
  /** "metaserver" or "kubeconfig", for status and logs. */
  source: string;
  /** Requests per second to the server (list and watch calls; default 100). */
  qps?: number;
  /** Burst above qps (default 200). */
  burst?: number;
  /** Kinds to watch (default all of KINDS). */
  kinds?: readonly Kind[];
}

export class ApiSource implements ClusterSource {
  readonly #reflectors: Reflector[];
  readonly #deps: ApiSourceDeps;
  readonly #source: string;
  #ctl?: AbortController;
  #runs: Promise<void>[] = [];

  constructor(deps: ApiSourceDeps, options: ApiSourceOptions) {
    this.#deps = deps;
    this.#source = options.source;
    const limiter = new TokenBucket(options.qps ?? 100, options.burst ?? 200);
    const log = deps.logger;
    this.#reflectors = (options.kinds ?? KINDS).map((kind) =>
      new Reflector(kind, { ...deps, logger: log, limiter }, options)
    );
  }

  start(signal: AbortSignal): void {
    if (this.#ctl) return;
    this.#ctl = new AbortController();
    const s = AbortSignal.any([signal, this.#ctl.signal]);
    this.#deps.logger.info("watching cluster state", {
      source: this.#source,
      server: this.#deps.transport.server,
    });
    this.#runs = this.#reflectors.map((r) => r.run(s));
  }

  async synced(): Promise<void> {
    await Promise.all(this.#reflectors.map((r) => r.synced()));
  }

  async stop(): Promise<void> {
    this.#ctl?.abort();
    await Promise.all(this.#runs);
  }

  status(): SourceStatus {
    const kinds: SourceStatus["kinds"] = {};
    let synced = true;
    let degraded = false;
    let lastError: string | undefined;
    let lastErrorAt = -Infinity;
    for (const r of this.#reflectors) {
      const st = r.status();
      synced &&= st.synced;
      if (st.state === "backoff" || (!st.synced && st.failures > 0)) degraded = true;
      kinds[st.kind] = st.missing
        ? "missing (404)"
        : st.forbidden
        ? "forbidden (403)"
        : st.state === "backoff"
        ? `backoff: ${st.lastError}`
        : st.state;
      if (st.lastError && (st.lastErrorAt ?? 0) > lastErrorAt && !st.missing) {
        lastError = st.lastError;
        lastErrorAt = st.lastErrorAt ?? 0;
      }
    }
    return {
      source: this.#source,
      target: this.#deps.transport.server,
      synced,
      degraded,
      lastError,
      kinds,
    };
  }
}
