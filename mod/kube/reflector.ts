/**
 * The list/watch loop for one kind: list (store.replace emits only the difference), then
 * watch from the list's resourceVersion; a stream that ends is re-opened from the last seen
 * version (bookmarks keep it fresh); `410 Gone` forces a re-list; a 404 (CRD not installed)
 * is logged once and retried rarely; other failures back off exponentially with jitter
 * while the store keeps its content.
 */

import type { Logger } from "../log/mod.ts";
import type { Counter } from "../metrics/mod.ts";
import {
  backoffDelay,
  type BackoffOptions,
  type Sleep,
  sleep as realSleep,
  type TokenBucket,
} from "./backoff.ts";
import { KubeApiError } from "./errors.ts";
import { collectionPaths } from "./resources.ts";
import type { ClusterStore } from "./store.ts";
import type { KubeTransport, WatchEvent } from "./transport.ts";
import type { Kind, KindMap } from "./types.ts";
import { checkObject, type ObjectProblem } from "./validate.ts";

export type ReflectorState =
  | "idle"
  | "listing"
  | "watching"
  | "backoff"
  | "missing"
  | "forbidden"
  | "stopped";

export interface ReflectorStatus {
  kind: Kind;
  state: ReflectorState;
  /** A list succeeded at least once (or the kind is known to be missing). */
  synced: boolean;
  /** The resource is not served (404 on every version). */
  missing: boolean;
  /** Listing it is not allowed (403). */
  forbidden: boolean;
  resourceVersion: string;
  /** The path that answered. */
  path?: string;
  lastError?: string;
  lastErrorAt?: number;
  failures: number;
}

export interface ReflectorMetrics {
  lists: Counter;
  watchRestarts: Counter;
  malformed: Counter;
}

export interface ReflectorDeps {
  transport: KubeTransport;
  store: ClusterStore;
  logger: Logger;
  metrics?: ReflectorMetrics;
  /** Shared request rate limit (qps/burst). */
  limiter?: TokenBucket;
  sleep?: Sleep;
  random?: () => number;
  now?: () => number;
}

export interface ReflectorOptions {
  backoff?: BackoffOptions;
  /** Retry period for a kind that answered 404 (default 5 min). */
  missingRetryMs?: number;
  /** Server-side watch duration; re-watched afterwards (default 5 min ± 20%). */
  watchTimeoutMs?: number;
  /** Forces a re-list this often, healing any drift (0 = never, the default). */
  resyncMs?: number;
}

export class Reflector {
  readonly #kind: Kind;
  readonly #deps: ReflectorDeps;
  readonly #opts: ReflectorOptions;
  readonly #log: Logger;
  readonly #sleep: Sleep;
  readonly #now: () => number;
  readonly #logged = new Set<string>();
  #status: ReflectorStatus;
  #syncedWaiters: (() => void)[] = [];
  #lastListAt = 0;
  /** Set at start and whenever the watch cannot continue from resourceVersion. */
  #needList = true;

  constructor(kind: Kind, deps: ReflectorDeps, options: ReflectorOptions = {}) {
    this.#kind = kind;
    this.#deps = deps;
    this.#opts = options;
    this.#log = deps.logger.child(kind);
    this.#sleep = deps.sleep ?? realSleep;
    this.#now = deps.now ?? Date.now;
    this.#status = {
      kind,
      state: "idle",
      synced: false,
      missing: false,
      forbidden: false,
      resourceVersion: "",
      failures: 0,
    };
  }

  status(): ReflectorStatus {
    return { ...this.#status };
  }

  /** Resolves once the kind is synced (or known missing). */
  synced(): Promise<void> {
    if (this.#status.synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncedWaiters.push(resolve));
  }

  /** Runs until the signal aborts. Never rejects for API or network failures. */
  async run(signal: AbortSignal): Promise<void> {
    const s = this.#status;
    while (!signal.aborted) {
      try {
        const due = this.#opts.resyncMs && this.#now() - this.#lastListAt >= this.#opts.resyncMs;
        if (this.#needList || !s.path || due) await this.#list(signal);
        if (signal.aborted) break;
        await this.#watch(signal);
      } catch (err) {
        if (signal.aborted) break;
        await this.#failed(err, signal);
      }
    }
    s.state = "stopped";
  }

  async #throttle(signal: AbortSignal): Promise<void> {
    const wait = this.#deps.limiter?.take() ?? 0;
    if (wait > 0) await this.#sleep(wait, signal);
  }

  async #list(signal: AbortSignal): Promise<void> {
    const s = this.#status;
    s.state = "listing";
    let notFound: KubeApiError | undefined;
    for (const path of collectionPaths(this.#kind)) {
      await this.#throttle(signal);
      if (signal.aborted) return;
      let result;
      try {
        this.#deps.metrics?.lists.inc({ kind: this.#kind });
        result = await this.#deps.transport.list(path, { signal });
      } catch (err) {
        if (err instanceof KubeApiError && err.notFound) {
          notFound = err;
          continue;
        }
        throw err;
      }
      const objects = this.#checkAll(result.items);
      this.#deps.store.replace(this.#kind, objects);
      if (s.missing || s.forbidden) this.#log.info("resource can be read again", { path });
      s.missing = false;
      s.forbidden = false;
      s.path = path;
      // An empty version (servers that do not track them) makes the watch start "now" with
      // synthetic ADDED events, which the store absorbs without repeating changes.
      s.resourceVersion = result.resourceVersion;
      this.#needList = false;
      s.failures = 0;
      this.#lastListAt = this.#now();
      this.#markSynced();
      return;
    }
    throw notFound!;
  }

  async #watch(signal: AbortSignal): Promise<void> {
    const s = this.#status;
    s.state = "watching";
    await this.#throttle(signal);
    if (signal.aborted) return;
    const ctl = new AbortController();
    const watchSignal = AbortSignal.any([signal, ctl.signal]);
    let expired: KubeApiError | undefined;
    let events = 0;
    const base = this.#opts.watchTimeoutMs ?? 300_000;
    const resync = this.#opts.resyncMs
      ? Math.max(1000, this.#opts.resyncMs - (this.#now() - this.#lastListAt))
      : Infinity;
    const timeoutMs = Math.min(resync, base * (0.8 + 0.4 * (this.#deps.random ?? Math.random)()));
    const started = this.#now();
    await this.#deps.transport.watch(s.path!, s.resourceVersion, (ev) => {
      if (ctl.signal.aborted) return;
      events++;
      const err = this.#apply(ev, s.path!);
      if (err) {
        expired = err;
        ctl.abort();
      }
    }, { signal: watchSignal, timeoutSeconds: Math.max(1, Math.round(timeoutMs / 1000)) });
    if (expired) throw expired;
    if (signal.aborted) return;
    this.#deps.metrics?.watchRestarts.inc({ kind: this.#kind, reason: "closed" });
    // A stream that ends at once without events, again and again, must not spin.
    if (events === 0 && this.#now() - started < 1000) {
      s.failures++;
      s.state = "backoff";
      await this.#sleep(backoffDelay(s.failures, this.#opts.backoff, this.#deps.random), signal);
    } else {
      s.failures = 0;
    }
  }

  /** Applies one watch event; returns an error when the watch must end (ERROR events). */
  #apply(ev: WatchEvent, path: string): KubeApiError | undefined {
    const s = this.#status;
    const obj = ev.object as { metadata?: { resourceVersion?: unknown } } | undefined;
    switch (ev.type) {
      case "ADDED":
      case "MODIFIED": {
        const checked = checkObject(this.#kind, ev.object);
        if (checked.ok) this.#deps.store.upsert(this.#kind, checked.object);
        else this.#malformed(checked.error, obj);
        break;
      }
      case "DELETED": {
        const m = (obj as { metadata?: { namespace?: unknown; name?: unknown } })?.metadata;
        if (typeof m?.name === "string") {
          this.#deps.store.delete(
            this.#kind,
            typeof m.namespace === "string" ? m.namespace : undefined,
            m.name,
          );
        } else {
          this.#malformed({
            kind: this.#kind,
            field: "metadata.name",
            problem: "missing in a DELETED event",
          }, obj);
        }
        break;
      }
      case "BOOKMARK":
        break;
      case "ERROR": {
        const st = ev.object as { code?: unknown; reason?: unknown; message?: unknown };
        const code = typeof st?.code === "number" ? st.code : 500;
        // #failed decides: 410 re-lists, anything else re-watches after a backoff.
        return new KubeApiError(
          "WATCH",
          path,
          code,
          String(st?.reason ?? "Error"),
          String(st?.message ?? ""),
        );
      }
      default:
        this.#log.warn("unknown watch event type", { type: String(ev.type) });
        return undefined;
    }
    const rv = obj?.metadata?.resourceVersion;
    if (typeof rv === "string" && rv) s.resourceVersion = rv;
    s.failures = 0;
    return undefined;
  }

  #checkAll(items: unknown[]): KindMap[Kind][] {
    const out: KindMap[Kind][] = [];
    for (const item of items) {
      const checked = checkObject(this.#kind, item);
      if (checked.ok) out.push(checked.object);
      else this.#malformed(checked.error, item);
    }
    return out;
  }

  #malformed(p: ObjectProblem, raw: unknown): void {
    this.#deps.metrics?.malformed.inc({ kind: this.#kind });
    const rv = (raw as { metadata?: { resourceVersion?: unknown } })?.metadata?.resourceVersion;
    const key = `${p.namespace}/${p.name}@${String(rv)}:${p.field}`;
    if (this.#logged.has(key)) return;
    if (this.#logged.size > 1000) this.#logged.clear();
    this.#logged.add(key);
    this.#log.warn("skipping malformed object", {
      kind: p.kind,
      namespace: p.namespace,
      name: p.name,
      field: p.field,
      problem: p.problem,
    });
  }

  #markSynced(): void {
    this.#status.synced = true;
    const waiters = this.#syncedWaiters;
    this.#syncedWaiters = [];
    for (const w of waiters) w();
  }

  async #failed(err: unknown, signal: AbortSignal): Promise<void> {
    const s = this.#status;
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof KubeApiError && err.expired) {
      // 410: the version is gone; re-list at once (the store keeps its content meanwhile).
      this.#log.info("watch expired, re-listing", { resourceVersion: s.resourceVersion });
      this.#deps.metrics?.watchRestarts.inc({ kind: this.#kind, reason: "expired" });
      s.resourceVersion = "";
      this.#needList = true;
      return;
    }
    s.lastError = message;
    s.lastErrorAt = this.#now();
    if (err instanceof KubeApiError && err.notFound && s.state === "listing") {
      if (!s.missing) {
        this.#log.info("resource not served (CRD not installed?), retrying rarely", {
          paths: collectionPaths(this.#kind),
          retryMs: this.#opts.missingRetryMs ?? 300_000,
        });
      }
      s.missing = true;
      s.state = "missing";
      s.resourceVersion = "";
      this.#needList = true;
      s.path = undefined;
      // Not served means no objects: drop what an older snapshot or server had.
      this.#deps.store.replace(this.#kind, []);
      this.#markSynced();
      await this.#sleep(this.#opts.missingRetryMs ?? 300_000, signal);
      return;
    }
    if (err instanceof KubeApiError && err.status === 403 && s.state === "listing") {
      // Not allowed to read this kind (RBAC of a kubeconfig user): the other kinds still
      // work. Keep what we have, count it as synced, log once, retry rarely.
      if (!s.forbidden) this.#log.warn("not allowed to list, retrying rarely", { error: message });
      s.forbidden = true;
      s.state = "forbidden";
      this.#markSynced();
      await this.#sleep(this.#opts.missingRetryMs ?? 300_000, signal);
      return;
    }
    s.failures++;
    s.state = "backoff";
    if (!(err instanceof KubeApiError) || err.notFound) {
      // After a network failure the server may have restarted with another history, and a
      // 404 on a watch means the resource went away: re-list (the store emits only the
      // difference, so nothing is repeated).
      s.resourceVersion = "";
      this.#needList = true;
    }
    const delay = backoffDelay(s.failures, this.#opts.backoff, this.#deps.random);
    const fields = { error: message, attempt: s.failures, retryMs: delay };
    if (s.failures === 1 || s.failures % 10 === 0) {
      this.#log.warn("list/watch failed, backing off", fields);
    } else this.#log.debug("list/watch failed, backing off", fields);
    this.#deps.metrics?.watchRestarts.inc({ kind: this.#kind, reason: "error" });
    await this.#sleep(delay, signal);
  }
}
