/** Capped exponential backoff with jitter, and an abortable sleep. */

export interface BackoffOptions {
  /** First delay (default 500 ms). */
  initialMs?: number;
  /** Cap (default 30 s). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Fraction of the delay randomised, 0..1 (default 0.3: delay × [0.7, 1.3]). */
  jitter?: number;
}

/** Delay before retry number `attempt` (1-based), capped, with jitter from `random()`. */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initial = options.initialMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const factor = options.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.3));
  const base = Math.min(max, initial * factor ** Math.max(0, attempt - 1));
  const d = base * (1 - jitter + 2 * jitter * random());
  return Math.round(Math.min(max, Math.max(0, d)));
}

/** Sleeps `ms`, or less when the signal aborts (then resolves, never rejects). */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export const sleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

/** A token bucket limiting request rates (the `qps`/`burst` of client-go). */
export class TokenBucket {
  #tokens: number;
  #last: number;
  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** Milliseconds to wait before the next request may go (0 = now); takes a token. */
  take(): number {
    if (!(this.qps > 0)) return 0;
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) / 1000) * this.qps);
    this.#last = t;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.qps) * 1000);
  }
}
