/**
 * A source reading a folder of Kubernetes YAML files (recursively: *.yaml, *.yml, *.json),
 * re-read when the folder changes (Deno.watchFs, debounced). A file that does not parse is
 * logged with file:line and its last good content is kept; malformed objects are skipped.
 */

import type { Logger } from "../log/mod.ts";
import { ClusterStateConfigError, ManifestError } from "./errors.ts";
import { type ManifestObject, parseManifest } from "./manifests.ts";
import type { ClusterSource, SourceStatus } from "./source.ts";
import type { ClusterStore } from "./store.ts";
import { type Kind, type KindMap, KINDS, objectKey } from "./types.ts";

export interface ManifestSourceDeps {
  store: ClusterStore;
  logger: Logger;
}

export interface ManifestSourceOptions {
  dir: string;
  /** Quiet time after a change before re-reading (default 200 ms). */
  debounceMs?: number;
}

const EXTENSIONS = /\.(ya?ml|json)$/i;
const MAX_FILES = 10_000;

export class ManifestSource implements ClusterSource {
  readonly #deps: ManifestSourceDeps;
  readonly #dir: string;
  readonly #debounceMs: number;
  readonly #log: Logger;
  /** Last good content per file (relative path). */
  readonly #files = new Map<string, ManifestObject[]>();
  /** Current problem per file. */
  readonly #errors = new Map<string, string>();
  readonly #reported = new Set<string>();
  #watcher?: Deno.FsWatcher;
  #loop?: Promise<void>;
  #timer?: ReturnType<typeof setTimeout>;
  #first?: Promise<void>;
  #reloading: Promise<void> = Promise.resolve();
  #stopped = false;
  #synced = false;

  constructor(deps: ManifestSourceDeps, options: ManifestSourceOptions) {
    this.#deps = deps;
    this.#dir = options.dir;
    this.#debounceMs = options.debounceMs ?? 200;
    this.#log = deps.logger;
  }

  start(_signal: AbortSignal): void {
    if (this.#first) return;
    this.#first = (async () => {
      let info: Deno.FileInfo;
      try {
        info = await Deno.stat(this.#dir);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          throw new ClusterStateConfigError("manifestDir", `folder "${this.#dir}" does not exist`, {
            cause: err,
          });
        }
        throw err;
      }
      if (!info.isDirectory) {
        throw new ClusterStateConfigError("manifestDir", `"${this.#dir}" is not a folder`);
      }
      if (this.#stopped) return;
      this.#watcher = Deno.watchFs(this.#dir, { recursive: true });
      this.#loop = this.#watch(this.#watcher);
      await this.reload();
    })();
    // A failed first read is reported through synced(); avoid an unhandled rejection here.
    this.#first.catch(() => {});
  }

  synced(): Promise<void> {
    return this.#first ?? Promise.reject(new Error("ManifestSource not started"));
  }

  async #watch(watcher: Deno.FsWatcher): Promise<void> {
    for await (const ev of watcher) {
      if (ev.kind === "access") continue;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        this.reload().catch((err) =>
          this.#log.error("cannot re-read manifest folder", { dir: this.#dir, error: err })
        );
      }, this.#debounceMs);
    }
  }

  /** Re-reads the folder and applies the difference to the store. Serialised. */
  reload(): Promise<void> {
    const run = () => this.#reload();
    this.#reloading = this.#reloading.then(run, run);
    return this.#reloading;
  }

  async #reload(): Promise<void> {
    if (this.#stopped) return;
    const seen = new Set<string>();
    for (const path of await listFiles(this.#dir)) {
      const rel = path.slice(this.#dir.replace(/\/+$/, "").length + 1);
      seen.add(rel);
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue; // removed while we read
        throw err;
      }
      try {
        const parsed = parseManifest(rel, text);
        this.#files.set(rel, parsed.objects);
        if (this.#errors.delete(rel)) this.#log.info("manifest file is valid again", { file: rel });
        for (const s of parsed.skipped) this.#reportOnce(s.error, !!s.ignoredKind);
      } catch (err) {
        if (!(err instanceof ManifestError)) throw err;
        if (this.#errors.get(rel) !== err.message) {
          this.#log.error("cannot read manifest file, keeping its last good content", {
            file: rel,
            line: err.line,
            col: err.col,
            problem: err.problem,
            kept: this.#files.get(rel)?.length ?? 0,
          });
        }
        this.#errors.set(rel, err.message);
      }
    }
    for (const rel of [...this.#files.keys()]) if (!seen.has(rel)) this.#files.delete(rel);
    for (const rel of [...this.#errors.keys()]) if (!seen.has(rel)) this.#errors.delete(rel);
    this.#apply();
    this.#synced = true;
  }

  #reportOnce(err: ManifestError, ignored: boolean): void {
    if (this.#reported.has(err.message)) return;
    if (this.#reported.size > 1000) this.#reported.clear();
    this.#reported.add(err.message);
    const fields = { file: err.file, line: err.line, problem: err.problem };
    if (ignored) this.#log.debug("manifest object ignored", fields);
    else this.#log.warn("skipping malformed manifest object", fields);
  }

  #apply(): void {
    const byKind = new Map<Kind, Map<string, ManifestObject>>(KINDS.map((k) => [k, new Map()]));
    for (const rel of [...this.#files.keys()].sort()) {
      for (const mo of this.#files.get(rel)!) {
        const m = byKind.get(mo.kind)!;
        const key = objectKey(mo.object);
        const prev = m.get(key);
        if (prev && prev.file !== mo.file) {
          this.#reportOnce(
            new ManifestError(
              mo.file,
              mo.line,
              1,
              `${mo.kind} ${key} also defined in ${prev.file}:${prev.line}; this one wins`,
            ),
            false,
          );
        }
        m.set(key, mo);
      }
    }
    const store = this.#deps.store;
    store.batch(() => {
      for (const [kind, m] of byKind) {
        store.replace(kind, [...m.values()].map((mo) => mo.object) as KindMap[typeof kind][]);
      }
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
    await this.#loop;
    // Failures of these were logged or reported through synced() already.
    await this.#reloading.catch(() => {});
    await this.#first?.catch(() => {});
  }

  status(): SourceStatus {
    const errors = [...this.#errors.values()];
    const counts: Partial<Record<Kind, number>> = {};
    for (const list of this.#files.values()) {
      for (const mo of list) counts[mo.kind] = (counts[mo.kind] ?? 0) + 1;
    }
    const kinds: SourceStatus["kinds"] = {};
    for (const k of KINDS) kinds[k] = `${counts[k] ?? 0} objects from ${this.#files.size} files`;
    return {
      source: "manifests",
      target: this.#dir,
      synced: this.#synced,
      degraded: errors.length > 0,
      lastError: errors[0],
      kinds,
    };
  }
}

/** Manifest files under `dir`, sorted, hidden entries skipped. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, depth: number) => {
    if (depth > 8) return;
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(d));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    for (const e of entries) {
      if (e.name.startsWith(".") || out.length >= MAX_FILES) continue;
      const p = `${d.replace(/\/+$/, "")}/${e.name}`;
      if (e.isDirectory) await walk(p, depth + 1);
      else if (e.isFile && EXTENSIONS.test(e.name)) out.push(p);
    }
  };
  await walk(dir, 0);
  return out.sort();
}
