/** What every listener of one proxy shares. */

import type { Logger } from "../log/mod.ts";
import { LogRateLimiter } from "../log/mod.ts";
import { type RelayBuffers, relayBuffers } from "./buffer_pool.ts";
import type { Connector } from "./connector.ts";
import type { ProxyMetrics } from "./metrics.ts";
import type { ProxyOptions } from "./options.ts";

export class ProxyContext {
  readonly #shutdown = new AbortController();
  readonly #open = new Set<{ close(): void }>();
  #drained?: () => void;
  readonly limiter: LogRateLimiter;
  /** Relay buffers shared by every connection of this proxy. */
  readonly buffers: RelayBuffers;

  constructor(
    readonly log: Logger,
    readonly metrics: ProxyMetrics,
    readonly connector: Connector,
    readonly options: ProxyOptions,
    readonly now: () => number,
  ) {
    this.limiter = new LogRateLimiter(5, 10_000, now);
    this.buffers = relayBuffers(options.relayBufferBytes);
  }

  /** Aborted when open connections must end (after the drain period). */
  get signal(): AbortSignal {
    return this.#shutdown.signal;
  }

  track(c: { close(): void }): void {
    this.#open.add(c);
  }
  untrack(c: { close(): void }): void {
    this.#open.delete(c);
    if (this.#open.size === 0) this.#drained?.();
  }
  get openCount(): number {
    return this.#open.size;
  }

  /** Waits up to `ms` for open connections to finish, then closes the rest. */
  async drain(ms: number): Promise<void> {
    if (this.#open.size > 0 && ms > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
    }
    this.#shutdown.abort();
    for (const c of [...this.#open]) c.close();
  }

  /** Logs a per-connection problem, rate-limited per key. */
  warnLimited(key: string, msg: string, fields: Record<string, unknown>): void {
    const suppressed = this.limiter.allow(key);
    if (suppressed === undefined) return;
    this.log.warn(msg, suppressed ? { ...fields, suppressed } : fields);
  }
}
