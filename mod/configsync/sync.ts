/**
 * Cluster config sync: the ConfigMap `kubeedge/edgemesh-agent-cfg` (key
 * `edgemesh-agent.yaml`) is written to `<stateDir>/edgemesh-agent.yaml` when it changes and
 * validates; the config watcher then hot-reloads it. An invalid ConfigMap is refused: the
 * file is kept, every error is logged, and status and a metric show the failure.
 */

import { checkText, type ConfigIssue, formatIssue } from "../config/mod.ts";
import type { ConfigMap, StoreReader } from "../kube/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import type { Service, ServiceStatus } from "../lifecycle/mod.ts";

export const AGENT_CONFIGMAP = {
  namespace: "kubeedge",
  name: "edgemesh-agent-cfg",
  key: "edgemesh-agent.yaml",
};

export interface ConfigSyncDeps {
  logger: Logger;
  metrics: Registry;
  store: StoreReader;
}

export interface ConfigSyncOptions {
  /** Where the synced file goes: `<stateDir>/edgemesh-agent.yaml`. */
  file: string;
}

export interface ConfigSyncState {
  lastResult: "none" | "written" | "unchanged" | "rejected" | "removed";
  lastAt?: string;
  errors: string[];
}

export class ConfigSync implements Service {
  readonly name = "configsync";
  #unsubscribe?: () => void;
  #state: ConfigSyncState = { lastResult: "none", errors: [] };
  #chain = Promise.resolve();
  readonly #results;

  constructor(private readonly deps: ConfigSyncDeps, private readonly options: ConfigSyncOptions) {
    this.#results = deps.metrics.counter(
      "edgemesh_cluster_config_sync_total",
      "ConfigMap edgemesh-agent-cfg sync attempts by result.",
      ["result"],
    );
  }

  get state(): Readonly<ConfigSyncState> {
    return this.#state;
  }

  async start(_signal: AbortSignal): Promise<void> {
    this.#unsubscribe = this.deps.store.on("configmaps:update", (c) => {
      const m = c.object.metadata;
      if (m.namespace === AGENT_CONFIGMAP.namespace && m.name === AGENT_CONFIGMAP.name) {
        this.#enqueue(c.type === "deleted" ? undefined : c.object);
      }
    });
    const current = this.deps.store.get(
      "configmaps",
      AGENT_CONFIGMAP.namespace,
      AGENT_CONFIGMAP.name,
    );
    if (current) {
      this.#enqueue(current);
      await this.#chain;
    }
  }

  #enqueue(cm: ConfigMap | undefined): void {
    this.#chain = this.#chain.then(async () => {
      await this.sync(cm);
    }).catch((err) => {
      this.deps.logger.error("cluster config sync failed", { error: err });
    });
  }

  /** Applies one ConfigMap version (undefined: deleted). Public for tests. */
  async sync(cm: ConfigMap | undefined): Promise<ConfigSyncState["lastResult"]> {
    const log = this.deps.logger;
    const at = new Date().toISOString();
    if (!cm) {
      // Deleted ConfigMap: keep the last synced file; a deletion is not a config.
      log.warn("ConfigMap deleted; keeping the last synced cluster config", {
        configMap: "kubeedge/edgemesh-agent-cfg",
      });
      return this.#set({ lastResult: "unchanged", lastAt: at, errors: [] });
    }
    const text = cm.data?.[AGENT_CONFIGMAP.key];
    const source = `configmap kubeedge/edgemesh-agent-cfg[${AGENT_CONFIGMAP.key}]`;
    if (text === undefined) {
      const errors = [`${source}: key is missing`];
      log.error("cluster config refused", { errors });
      return this.#set({ lastResult: "rejected", lastAt: at, errors });
    }
    const r = checkText(source, text);
    const errors = r.issues.filter((i: ConfigIssue) => i.severity === "error").map(formatIssue);
    if (!r.config) {
      log.error("cluster config refused; keeping the last good one", { errors });
      return this.#set({ lastResult: "rejected", lastAt: at, errors });
    }
    let old: string | undefined;
    try {
      old = await Deno.readTextFile(this.options.file);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (old === text) return this.#set({ lastResult: "unchanged", lastAt: at, errors: [] });
    await atomicWrite(this.options.file, text);
    log.info("cluster config written", {
      file: this.options.file,
      resourceVersion: cm.metadata.resourceVersion,
    });
    return this.#set({ lastResult: "written", lastAt: at, errors: [] });
  }

  #set(s: ConfigSyncState): ConfigSyncState["lastResult"] {
    this.#state = s;
    this.#results.inc({ result: s.lastResult });
    return s.lastResult;
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await this.#chain;
  }

  status(): ServiceStatus {
    if (this.#state.lastResult === "rejected") {
      return { state: "degraded", detail: `ConfigMap refused: ${this.#state.errors[0] ?? ""}` };
    }
    return {
      state: this.#unsubscribe ? "ready" : "stopped",
      detail: `last sync: ${this.#state.lastResult}`,
    };
  }
}

/** Temp file, fsync, rename: readers see the old or the new file, never half of one. */
export async function atomicWrite(path: string, text: string, mode = 0o644): Promise<void> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    using f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode });
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await Deno.rename(tmp, path);
}
