/**
 * Reading the config layers from disk and watching them for hot reload. A change that does
 * not validate is reported and the last good config stays in force.
 */

import type { ConfigIssue } from "./errors.ts";
import { diffPaths, flagLayer, type Layer, parseLayer, resolveLayers } from "./load.ts";
import type { Config } from "./schema.ts";

export interface ConfigSources {
  /** The local file (`--config`); absent file → embedded defaults. */
  localFile?: string;
  /** Flags, as a partial config (`{ logLevel: "debug" }`). */
  flags?: Record<string, unknown>;
  /** Whether to layer `<stateDir>/edgemesh-agent.yaml` (the synced ConfigMap) under the local file. */
  clusterLayer?: boolean;
}

/** Keys that only the local file and flags may set (CONTRACTS.md: node-local keys). */
const NODE_LOCAL = ["nodeName", "commonConfig.stateDir", "commonConfig.adminAddress"];

export const CLUSTER_CONFIG_FILE = "edgemesh-agent.yaml";

export interface ReadResult {
  config?: Readonly<Config>;
  issues: ConfigIssue[];
  /** Files that were read (existing ones). */
  files: string[];
  /** The cluster config file path, whether it exists or not. */
  clusterFile?: string;
}

async function readLayer(path: string): Promise<Layer | undefined> {
  try {
    return parseLayer(path, await Deno.readTextFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    return {
      name: path,
      value: {},
      positions: new Map(),
      issues: [{
        path: "",
        message: `cannot read: ${(err as Error).message}`,
        pos: { file: path, line: 1, col: 1 },
        severity: "error",
      }],
    };
  }
}

function stripNodeLocal(layer: Layer): Layer {
  const value = structuredClone(layer.value);
  const issues = [...layer.issues];
  for (const key of NODE_LOCAL) {
    const parts = key.split(".");
    let obj: Record<string, unknown> | undefined = value;
    for (const p of parts.slice(0, -1)) obj = obj?.[p] as Record<string, unknown> | undefined;
    const last = parts[parts.length - 1];
    if (obj && typeof obj === "object" && last in obj) {
      delete obj[last];
      issues.push({
        path: key,
        message: "node-local key in the cluster config is ignored; set it in the local file",
        pos: layer.positions.get(key),
        severity: "warning",
      });
    }
  }
  return { ...layer, value, issues };
}

/** Reads every layer and resolves them. */
export async function readConfig(sources: ConfigSources): Promise<ReadResult> {
  const local = sources.localFile ? await readLayer(sources.localFile) : undefined;
  const flags = flagLayer(sources.flags ?? {});
  const upper = [local, flags].filter((l): l is Layer => !!l);
  const files = local ? [sources.localFile!] : [];
  if (!sources.clusterLayer) return { ...resolveLayers(upper), files };
  // stateDir comes from the upper layers; resolve once to learn it.
  const first = resolveLayers(upper);
  if (!first.config) return { ...first, files };
  const clusterFile = `${first.config.commonConfig.stateDir}/${CLUSTER_CONFIG_FILE}`;
  const cluster = await readLayer(clusterFile);
  if (!cluster) return { ...first, files, clusterFile };
  const result = resolveLayers([stripNodeLocal(cluster), ...upper]);
  return { ...result, files: [clusterFile, ...files], clusterFile };
}

export interface ConfigChange {
  config: Readonly<Config>;
  previous: Readonly<Config>;
  /** Field paths that changed. */
  changed: string[];
}

export interface ConfigWatcherDeps {
  onChange(change: ConfigChange): void;
  onInvalid(issues: ConfigIssue[]): void;
}

/**
 * Watches the layer files (their folders, since editors replace files by rename) and
 * re-resolves on change, debounced.
 */
export class ConfigWatcher {
  #current: Readonly<Config>;
  #watchers: Deno.FsWatcher[] = [];
  #timer?: ReturnType<typeof setTimeout>;
  #loop?: Promise<void>[];
  #reloading = Promise.resolve();

  constructor(
    private readonly sources: ConfigSources,
    initial: Readonly<Config>,
    private readonly deps: ConfigWatcherDeps,
    private readonly debounceMs = 150,
  ) {
    this.#current = initial;
  }

  get current(): Readonly<Config> {
    return this.#current;
  }

  /** Starts watching; folders that do not exist are skipped. */
  start(): void {
    const targets = new Set<string>();
    if (this.sources.localFile) targets.add(this.sources.localFile);
    if (this.sources.clusterLayer) {
      targets.add(`${this.#current.commonConfig.stateDir}/${CLUSTER_CONFIG_FILE}`);
    }
    const dirs = new Set(
      [...targets].map((f) => f.includes("/") ? f.slice(0, f.lastIndexOf("/")) || "/" : "."),
    );
    const names = new Set([...targets].map((f) => f.slice(f.lastIndexOf("/") + 1)));
    this.#loop = [];
    for (const dir of dirs) {
      let w: Deno.FsWatcher;
      try {
        w = Deno.watchFs(dir, { recursive: false });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue;
        throw err;
      }
      this.#watchers.push(w);
      this.#loop.push((async () => {
        for await (const ev of w) {
          if (ev.paths.some((p) => names.has(p.slice(p.lastIndexOf("/") + 1)))) this.#schedule();
        }
      })());
    }
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#reloading = this.#reloading.then(async () => {
        await this.reload();
      });
    }, this.debounceMs);
  }

  /** Re-reads now. Returns true when a new valid config was applied. */
  async reload(): Promise<boolean> {
    const r = await readConfig(this.sources);
    if (!r.config) {
      this.deps.onInvalid(r.issues);
      return false;
    }
    const changed = diffPaths(this.#current, r.config);
    if (changed.length === 0) return false;
    const previous = this.#current;
    this.#current = r.config;
    this.deps.onChange({ config: r.config, previous, changed });
    return true;
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    for (const w of this.#watchers) {
      try {
        w.close();
      } catch (err) {
        if (!(err instanceof Deno.errors.BadResource)) throw err;
      }
    }
    this.#watchers = [];
    await Promise.allSettled(this.#loop ?? []);
    await this.#reloading;
  }
}
