/** The lifecycle contract every long-running part follows, and a runner for a set of them. */

import type { Logger } from "../log/mod.ts";

export type ServiceState = "stopped" | "starting" | "ready" | "degraded" | "failed" | "stopping";

export interface ServiceStatus {
  state: ServiceState;
  /** One line for humans: what it serves, or why it is not ready. */
  detail: string;
}

/**
 * A long-running part of the agent.
 * - `start(signal)` resolves once it serves (sockets bound, first sync done) or rejects with a
 *   typed error. The signal aborts a start in progress.
 * - `stop()` is idempotent, safe before start, and resolves when listeners are closed and
 *   loops drained.
 * - `status()` is cheap and synchronous.
 */
export interface Service {
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  status(): ServiceStatus;
}

/** True for states in which a module counts as serving for `/readyz`. */
export function isServing(state: ServiceState): boolean {
  return state === "ready" || state === "degraded";
}

export class StartError extends Error {
  override name = "StartError";
  constructor(readonly service: string, cause: unknown) {
    super(`Cannot start ${service}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/**
 * Starts services stage by stage and stops them in reverse. A stage is one service or a
 * list of independent services started (and stopped) concurrently. A failed start stops
 * what was started and rethrows as a StartError.
 */
export class ServiceGroup {
  readonly services: readonly Service[];
  #stages: readonly (readonly Service[])[];
  #started: Service[][] = [];
  #stopping?: Promise<void>;

  constructor(stages: readonly (Service | readonly Service[])[], private readonly log: Logger) {
    this.#stages = stages.map((s) => (Array.isArray(s) ? s : [s as Service]));
    this.services = this.#stages.flat();
  }

  async start(signal: AbortSignal): Promise<void> {
    for (const stage of this.#stages) {
      signal.throwIfAborted();
      this.#started.push([...stage]);
      const results = await Promise.allSettled(stage.map(async (s) => {
        const t0 = performance.now();
        this.log.debug("starting", { service: s.name });
        await s.start(signal);
        this.log.info("started", { service: s.name, ms: Math.round(performance.now() - t0) });
      }));
      const failed = results.findIndex((r) => r.status === "rejected");
      if (failed !== -1) {
        await this.stop();
        const err = (results[failed] as PromiseRejectedResult).reason;
        throw err instanceof StartError ? err : new StartError(stage[failed].name, err);
      }
    }
  }

  /** Stops stages in reverse start order; each stop bounded by `perServiceMs`. Idempotent. */
  stop(perServiceMs = 4000): Promise<void> {
    this.#stopping ??= (async () => {
      for (const stage of [...this.#started].reverse()) {
        await Promise.all(stage.map((s) => this.#stopOne(s, perServiceMs)));
      }
      this.#started = [];
    })();
    return this.#stopping;
  }

  async #stopOne(s: Service, perServiceMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        s.stop(),
        new Promise<void>((_, rej) => {
          timer = setTimeout(
            () => rej(new Error(`did not stop within ${perServiceMs} ms`)),
            perServiceMs,
          );
        }),
      ]);
      this.log.debug("stopped", { service: s.name });
    } catch (err) {
      this.log.error("stop failed", { service: s.name, error: err });
    } finally {
      clearTimeout(timer);
    }
  }

  statuses(): Record<string, ServiceStatus> {
    const out: Record<string, ServiceStatus> = {};
    for (const s of this.services) out[s.name] = s.status();
    return out;
  }
}
