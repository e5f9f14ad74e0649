/** Saves the store to its snapshot file after changes, debounced, one write at a time. */

import type { Logger } from "../log/mod.ts";
import type { Counter } from "../metrics/mod.ts";
import { type SnapshotFiles, storeObjects } from "./snapshot.ts";
import type { ClusterStore } from "./store.ts";

export interface SnapshotWriterOptions {
  /** Quiet time after the last change before writing (default 1000 ms). */
  debounceMs?: number;
  /** Longest delay of a write under a steady stream of changes (default 10 s). */
  maxDelayMs?: number;
}

export interface SnapshotWriterDeps {
  store: ClusterStore;
  files: SnapshotFiles;
  logger: Logger;
  metrics?: { writes: Counter; errors: Counter };
}

export class SnapshotWriter {
  readonly #deps: SnapshotWriterDeps;
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  #timer?: ReturnType<typeof setTimeout>;
  #firstChangeAt?: number;
  #dirty = false;
  #writing?: Promise<void>;
  #off?: () => void;
  #lastError?: string;
  #lastSavedAt?: number;

  constructor(deps: SnapshotWriterDeps, options: SnapshotWriterOptions = {}) {
    this.#deps = deps;
    this.#debounceMs = options.debounceMs ?? 1000;
    this.#maxDelayMs = options.maxDelayMs ?? 10_000;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  get lastSavedAt(): number | undefined {
    return this.#lastSavedAt;
  }

  /** Begins watching the store for changes. */
  start(): void {
    this.#off ??= this.#deps.store.on("batch", () => this.#changed());
  }

  #changed(): void {
    this.#dirty = true;
    const now = performance.now();
    this.#firstChangeAt ??= now;
    clearTimeout(this.#timer);
    const wait = Math.min(
      this.#debounceMs,
      Math.max(0, this.#firstChangeAt + this.#maxDelayMs - now),
    );
    this.#timer = setTimeout(() => void this.flush(), wait);
  }

  /** Writes now if anything changed since the last write; resolves when written. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#writing) await this.#writing;
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#firstChangeAt = undefined;
    this.#writing = this.#write().finally(() => this.#writing = undefined);
    await this.#writing;
  }

  async #write(): Promise<void> {
    const t0 = performance.now();
    try {
      const bytes = await this.#deps.files.save(storeObjects(this.#deps.store));
      this.#lastError = undefined;
      this.#lastSavedAt = Date.now();
      this.#deps.metrics?.writes.inc();
      this.#deps.logger.debug("cluster snapshot saved", {
        bytes,
        ms: Math.round(performance.now() - t0),
      });
    } catch (err) {
      // A full or read-only disk must not stop the agent: keep serving, retry on next change.
      if (!isFsError(err)) throw err;
      this.#lastError = err.message;
      this.#deps.metrics?.errors.inc();
      this.#deps.logger.error("cannot save cluster snapshot", {
        path: this.#deps.files.path,
        error: err,
      });
    }
  }

  /** Stops watching and writes pending changes. Idempotent. */
  async stop(): Promise<void> {
    this.#off?.();
    this.#off = undefined;
    await this.flush();
  }
}

function isFsError(err: unknown): err is Error {
  return Object.values(Deno.errors).some((E) => err instanceof E);
}
