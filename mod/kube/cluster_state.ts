/**
 * The cluster state service: loads the snapshot, runs the configured source into the
 * store, saves the store back (debounced), and reports status. `start()` resolves after the
 * first complete sync, or right after loading a snapshot for network sources, so an agent
 * restarted while the metaserver is away serves its last known state at once.
 */

import type { Service, ServiceState, ServiceStatus } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import { AgentConfigMaps, type AgentConfigMapsOptions } from "./agent_configmaps.ts";
import { ApiSource } from "./api_source.ts";
import type { Sleep } from "./backoff.ts";
import { ClusterStateConfigError } from "./errors.ts";
import { clusterMetrics } from "./metrics.ts";
import { applySnapshot, type LoadedSnapshot, SnapshotFiles } from "./snapshot.ts";
import { SnapshotWriter } from "./snapshot_writer.ts";
import type { ClusterSource, SourceStatus } from "./source.ts";
import { ClusterStore } from "./store.ts";
import type { KubeTransport } from "./transport.ts";
import { ClientNodeTransport } from "./transport_client_node.ts";
import { FetchTransport } from "./transport_fetch.ts";
import { type Kind, KINDS } from "./types.ts";

export type ClusterSourceKind = "metaserver" | "kubeconfig" | "manifests";

/** Mirrors `kubeAPIConfig` and `commonConfig.stateDir`; durations in milliseconds. */
export interface ClusterStateOptions {
  source: ClusterSourceKind;
  /** `kubeAPIConfig.metaServer.server` (source "metaserver"). */
  metaServer: string;
  /** `kubeAPIConfig.kubeConfig` (source "kubeconfig"). */
  kubeConfig: string;
  /** `kubeAPIConfig.master` (source "kubeconfig": overrides the kubeconfig's server, or alone). */
  master: string;
  /** `kubeAPIConfig.manifestDir` (source "manifests"). */
  manifestDir: string;
  /** `commonConfig.stateDir`; "" disables the snapshot. */
  stateDir: string;
  /** `kubeAPIConfig.qps` / `burst`: client-side request rate limit. */
  qps: number;
  burst: number;
  /** Forced re-list period (default 0 = never; watches are trusted). */
  resyncMs?: number;
  /**
   * HTTP client for the metaserver: "client-node" (default, @kubernetes/client-node's Watch,
   * ~26 MB RSS) or "fetch" (the runtime's fetch, no extra memory). kubeconfig always uses
   * client-node (TLS client certificates, token and exec auth).
   */
  httpClient?: "client-node" | "fetch";
  /** Without a snapshot, start() waits this long for the first sync, then resolves degraded (default 30 s). */
  initialSyncTimeoutMs?: number;
  /** Snapshot write debounce (default 1000 ms). */
  snapshotDebounceMs?: number;
  /** List request timeout (default 30 s). */
  requestTimeoutMs?: number;
  /** A watch silent this long is re-opened (default 60 s). */
  watchIdleTimeoutMs?: number;
  /** Server-side watch duration (default 5 min ± 20%). */
  watchTimeoutMs?: number;
  /** Backoff after failures: first delay and cap (defaults 500 ms and 30 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Retry period for a resource answering 404 (a CRD not installed; default 5 min). */
  missingRetryMs?: number;
  /** Manifest folder change debounce (default 200 ms). */
  manifestDebounceMs?: number;
  /** Names of the agent's own ConfigMaps (defaults as in AgentConfigMapsOptions). */
  configMaps?: AgentConfigMapsOptions;
}

export interface ClusterStateDeps {
  logger: Logger;
  metrics?: Registry;
  /** The store to fill (default: a new one). */
  store?: ClusterStore;
  /** Test hook: use this transport instead of building one from the options. */
  transport?: KubeTransport;
  sleep?: Sleep;
  random?: () => number;
}

export interface ClusterStateDetails {
  state: ServiceState;
  source: ClusterSourceKind;
  target: string;
  /** The source has read every kind at least once since start. */
  synced: boolean;
  /** The snapshot loaded at start, if any. */
  snapshot?: { savedAt: string; objects: number };
  snapshotSaveError?: string;
  degraded: boolean;
  lastError?: string;
  counts: Record<Kind, number>;
  kinds: SourceStatus["kinds"];
}

export class ClusterState implements Service {
  readonly name = "cluster";
  readonly store: ClusterStore;
  /** The agent's ConfigMaps (cluster config, health config). */
  readonly configMaps: AgentConfigMaps;
  readonly #deps: ClusterStateDeps;
  readonly #o: ClusterStateOptions;
  readonly #log: Logger;
  #state: ServiceState = "stopped";
  #source?: ClusterSource;
  #writer?: SnapshotWriter;
  #snapshot?: LoadedSnapshot;
  #synced = false;
  #syncTimedOut = false;
  #startError?: string;
  #ctl?: AbortController;
  #stopping?: Promise<void>;

  constructor(deps: ClusterStateDeps, options: ClusterStateOptions) {
    this.#deps = deps;
    this.#o = options;
    this.#log = deps.logger;
    this.store = deps.store ?? new ClusterStore();
    this.configMaps = new AgentConfigMaps(this.store, options.configMaps);
    if (deps.metrics) {
      clusterMetrics(deps.metrics).objects.collect((set) => {
        for (const k of KINDS) set(this.store.size(k), { kind: k });
      });
    }
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#state !== "stopped") return;
    this.#state = "starting";
    this.#synced = this.#syncTimedOut = false;
    this.#startError = undefined;
    this.#ctl = new AbortController();
    const inner = AbortSignal.any([signal, this.#ctl.signal]);
    try {
      this.#snapshot = await this.#loadSnapshot();
      this.#source = await this.#makeSource();
      this.#source.start(inner);
      const synced = this.#source.synced().then(() => {
        this.#synced = true;
        this.#log.info("cluster state synced", this.#summary());
      });
      if (this.#snapshot && this.#o.source !== "manifests") {
        synced.catch((err) => {
          this.#startError = err instanceof Error ? err.message : String(err);
          this.#log.error("cluster source failed", { error: err });
        });
        this.#state = "degraded";
        this.#log.info("serving from the cluster snapshot until the source syncs", {
          savedAt: this.#snapshot.savedAt,
          objects: this.#snapshot.count,
        });
        return;
      }
      await this.#waitFirstSync(synced, inner);
      this.#state = this.#synced ? "ready" : "degraded";
    } catch (err) {
      this.#state = "failed";
      this.#startError = err instanceof Error ? err.message : String(err);
      await this.#shutdown();
      throw err;
    }
  }

  async #loadSnapshot(): Promise<LoadedSnapshot | undefined> {
    if (!this.#o.stateDir) return undefined;
    const files = new SnapshotFiles(this.#o.stateDir, { logger: this.#log });
    const m = this.#deps.metrics ? clusterMetrics(this.#deps.metrics) : undefined;
    let snapshot: LoadedSnapshot | undefined;
    try {
      snapshot = await files.load();
    } catch (err) {
      // An unreadable file (permissions, I/O) must not stop the agent either.
      if (!Object.values(Deno.errors).some((E) => err instanceof E)) throw err;
      this.#log.error("cannot read cluster snapshot, starting without it", {
        path: files.path,
        error: err,
      });
    }
    if (snapshot) {
      applySnapshot(this.store, snapshot);
      this.#log.info("loaded cluster snapshot", {
        savedAt: snapshot.savedAt,
        objects: snapshot.count,
      });
    }
    this.#writer = new SnapshotWriter({
      store: this.store,
      files,
      logger: this.#log,
      metrics: m && { writes: m.snapshotWrites, errors: m.snapshotErrors },
    }, { debounceMs: this.#o.snapshotDebounceMs });
    this.#writer.start();
    return snapshot;
  }

  async #makeSource(): Promise<ClusterSource> {
    const o = this.#o;
    const log = this.#log;
    if (o.source === "manifests") {
      if (!o.manifestDir) {
        throw new ClusterStateConfigError("kubeAPIConfig.manifestDir", "is empty");
      }
      // Loaded on demand: the YAML parser costs ~13 MB RSS, needless for API sources.
      const { ManifestSource } = await import("./manifest_source.ts");
      return new ManifestSource({ store: this.store, logger: log.child("manifests") }, {
        dir: o.manifestDir,
        debounceMs: o.manifestDebounceMs,
      });
    }
    const transportOptions = {
      requestTimeoutMs: o.requestTimeoutMs,
      watchIdleTimeoutMs: o.watchIdleTimeoutMs,
    };
    let transport = this.#deps.transport;
    if (!transport && o.source === "metaserver") {
      if (!o.metaServer) {
        throw new ClusterStateConfigError("kubeAPIConfig.metaServer.server", "is empty");
      }
      transport = o.httpClient === "fetch"
        ? new FetchTransport(o.metaServer, transportOptions)
        : await ClientNodeTransport.create({ server: o.metaServer }, transportOptions);
    } else if (!transport) {
      if (!o.kubeConfig && !o.master) {
        throw new ClusterStateConfigError(
          "kubeAPIConfig.kubeConfig",
          "kubeConfig or master is required",
        );
      }
      try {
        transport = await ClientNodeTransport.create({
          kubeConfigPath: o.kubeConfig || undefined,
          master: o.master || undefined,
        }, transportOptions);
      } catch (err) {
        throw new ClusterStateConfigError(
          "kubeAPIConfig.kubeConfig",
          `cannot use "${o.kubeConfig || o.master}": ${err instanceof Error ? err.message : err}`,
          { cause: err },
        );
      }
    }
    const m = this.#deps.metrics ? clusterMetrics(this.#deps.metrics) : undefined;
    return new ApiSource({
      transport,
      store: this.store,
      logger: log.child(o.source),
      metrics: m && { lists: m.lists, watchRestarts: m.watchRestarts, malformed: m.malformed },
      sleep: this.#deps.sleep,
      random: this.#deps.random,
    }, {
      source: o.source,
      qps: o.qps,
      burst: o.burst,
      resyncMs: o.resyncMs,
      watchTimeoutMs: o.watchTimeoutMs,
      missingRetryMs: o.missingRetryMs,
      backoff: { initialMs: o.backoffInitialMs, maxMs: o.backoffMaxMs },
    });
  }

  async #waitFirstSync(synced: Promise<void>, signal: AbortSignal): Promise<void> {
    const limit = this.#o.initialSyncTimeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        synced,
        new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            this.#syncTimedOut = true;
            this.#log.warn("no first sync yet, starting degraded with an empty store", {
              waitedMs: limit,
              ...this.#source?.status(),
            });
            resolve();
          }, limit);
        }),
        new Promise<void>((_, reject) => {
          onAbort = () => reject(signal.reason);
          if (signal.aborted) onAbort();
          else signal.addEventListener("abort", onAbort, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  stop(): Promise<void> {
    if (this.#state === "stopped" && !this.#source) return Promise.resolve();
    this.#stopping ??= (async () => {
      this.#state = "stopping";
      await this.#shutdown();
      this.#state = "stopped";
      this.#stopping = undefined;
    })();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    this.#ctl?.abort();
    await this.#source?.stop();
    this.#source = undefined;
    await this.#writer?.stop();
    this.#writer = undefined;
  }

  /** Writes the snapshot now if anything changed (tests, graceful drain). */
  async flushSnapshot(): Promise<void> {
    await this.#writer?.flush();
  }

  #summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of KINDS) out[k] = this.store.size(k);
    return out;
  }

  details(): ClusterStateDetails {
    const src = this.#source?.status();
    const synced = this.#synced;
    const degraded = !!src?.degraded || (!synced && this.#state !== "stopped") ||
      this.#syncTimedOut;
    return {
      state: this.status().state,
      source: this.#o.source,
      target: src?.target ?? this.#target(),
      synced,
      snapshot: this.#snapshot &&
        { savedAt: this.#snapshot.savedAt, objects: this.#snapshot.count },
      snapshotSaveError: this.#writer?.lastError,
      degraded,
      lastError: src?.lastError ?? this.#startError,
      counts: this.#summary() as Record<Kind, number>,
      kinds: src?.kinds ?? {},
    };
  }

  #target(): string {
    const o = this.#o;
    return o.source === "manifests"
      ? o.manifestDir
      : o.source === "metaserver"
      ? o.metaServer
      : o.kubeConfig || o.master;
  }

  status(): ServiceStatus {
    const st = this.#state;
    if (st === "stopped" || st === "stopping" || st === "starting") {
      return { state: st, detail: `${this.#o.source} ${this.#target()}` };
    }
    if (st === "failed") return { state: st, detail: this.#startError ?? "failed" };
    const src = this.#source?.status();
    const counts = this.#summary();
    const what =
      `${counts.services} services, ${counts.endpointslices} endpointslices, ${counts.endpoints} endpoints, ${counts.nodes} nodes, ${counts.pods} pods`;
    if (!this.#synced) {
      const why = src?.lastError ? `: ${src.lastError}` : "";
      const from = this.#snapshot
        ? `serving snapshot of ${this.#snapshot.savedAt}`
        : "serving an empty store";
      return { state: "degraded", detail: `${from} (${what}); ${this.#o.source} not synced${why}` };
    }
    if (src?.degraded) {
      return {
        state: "degraded",
        detail: `${what}; ${this.#o.source} failing, keeping last state: ${src.lastError}`,
      };
    }
    return { state: "ready", detail: `${this.#o.source} ${src?.target ?? ""} synced: ${what}` };
  }
}
