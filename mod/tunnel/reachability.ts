/**
 * Is this node reachable from outside its LAN? Decided from dial-backs (dialback.ts) by
 * connected peers: `reachable` once a peer outside our LAN opened a new connection to us,
 * `unreachable` once at least `minFailures` peers tried and failed (and none outside got
 * through), `unknown` before that. Results are kept per helper for a period, so helpers that
 * connect at different times add up; each period the results expire and peers are asked again
 * (also when our addresses change), so a verdict follows the network. An inconclusive round
 * keeps the last verdict. Never based on address ranges: private WANs count like public ones.
 */

import type { Connection } from "@libp2p/interface";
import type { Logger } from "../log/mod.ts";
import type { DialbackResult } from "./dialback.ts";

export type Verdict = "unknown" | "reachable" | "unreachable";

export interface Attempt extends DialbackResult {
  /** When the answer came (ms, the injected clock). */
  at: number;
}

/**
 * The verdict from the attempts of one period. Only peers outside our LAN count, both ways:
 * the question is reachability from outside, and a LAN neighbour's dial-back that timed out
 * on a loaded host must not make a listed relay stop relaying.
 */
export function decideReachability(attempts: DialbackResult[], minFailures = 2): Verdict {
  if (attempts.some((a) => a.outcome === "ok" && a.outside)) return "reachable";
  const failed = new Set(
    attempts.filter((a) => a.outcome === "failed" && a.outside).map((a) => a.helper),
  );
  return failed.size >= minFailures ? "unreachable" : "unknown";
}

export interface ReachabilityDeps {
  logger: Logger;
  /** Open direct connections, one per verified peer that may help. */
  helpers(): Connection[];
  /** Asks one helper (Dialback.ask with our current addresses). */
  ask(conn: Connection, signal: AbortSignal): Promise<DialbackResult>;
  /** A key of our own listen addresses: a change starts the checks over. */
  addressesKey(): string;
  /** True when the helper's address is in our LAN (asked last: they can only prove failure). */
  isNear(conn: Connection): boolean;
  onVerdict(verdict: Verdict, previous: Verdict, attempts: Attempt[]): void;
  now?: () => number;
}

export interface ReachabilityOptions {
  /** Results expire and peers are asked again after this long (5 min). */
  periodMs: number;
  /** Failed dial-backs by distinct peers that make a node unreachable (2). */
  minFailures: number;
  /** Peers asked at most per period while the verdict is open (8). */
  maxHelpers: number;
  /** Delay after a new peer before asking it, to batch peers that connect together (500). */
  settleMs: number;
}

export const REACHABILITY_DEFAULTS: ReachabilityOptions = {
  periodMs: 300_000,
  minFailures: 2,
  maxHelpers: 8,
  settleMs: 500,
};

/** Delay before asking again helpers that gave no answer (busy, rate limited, stream lost). */
const RETRY_MS = 3000;

export class Reachability {
  readonly opts: ReachabilityOptions;
  #verdict: Verdict = "unknown";
  #results = new Map<string, Attempt>();
  #asked = new Map<string, number>();
  #addrKey = "";
  #enabled = false;
  #settle?: ReturnType<typeof setTimeout>;
  #period?: ReturnType<typeof setInterval>;
  #shutdown = new AbortController();
  #running = new Set<Promise<void>>();

  constructor(readonly deps: ReachabilityDeps, opts: Partial<ReachabilityOptions> = {}) {
    this.opts = { ...REACHABILITY_DEFAULTS, ...opts };
  }

  get verdict(): Verdict {
    return this.#verdict;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** The fresh results, for status and logs. */
  attempts(): Attempt[] {
    return [...this.#results.values()];
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Starts or stops checking (helpers are always answered; that is the Dialback's job). */
  setEnabled(on: boolean): void {
    if (on === this.#enabled) return;
    this.#enabled = on;
    if (on) {
      this.#period = setInterval(() => this.#newPeriod(), this.opts.periodMs);
      this.kick();
    } else {
      clearInterval(this.#period);
      clearTimeout(this.#settle);
      this.#period = this.#settle = undefined;
    }
  }

  /** A peer connected (or our addresses may have changed): check soon. */
  kick(delayMs = this.opts.settleMs): void {
    if (!this.#enabled || this.#settle !== undefined || this.#shutdown.signal.aborted) return;
    this.#settle = setTimeout(() => {
      this.#settle = undefined;
      this.#track(this.check());
    }, delayMs);
  }

  #track(p: Promise<void>): void {
    const t = p.catch((err) => this.deps.logger.warn("reachability check failed", { error: err }))
      .finally(() => this.#running.delete(t));
    this.#running.add(t);
  }

  #newPeriod(): void {
    const cutoff = this.#now() - this.opts.periodMs;
    for (const [h, a] of this.#results) if (a.at <= cutoff) this.#results.delete(h);
    for (const [h, t] of this.#asked) if (t <= cutoff) this.#asked.delete(h);
    this.#track(this.check());
  }

  /** Asks peers not asked this period, until the period's results decide. */
  async check(): Promise<void> {
    if (!this.#enabled || this.#shutdown.signal.aborted) return;
    const key = this.deps.addressesKey();
    if (key !== this.#addrKey) {
      if (this.#addrKey) {
        this.deps.logger.info("own addresses changed; checking reachability again");
      }
      this.#addrKey = key;
      this.#results.clear();
      this.#asked.clear();
    }
    if (decideReachability([...this.#results.values()], this.opts.minFailures) !== "unknown") {
      return;
    }
    const budget = this.opts.maxHelpers - this.#asked.size;
    const seen = new Set<string>();
    const fresh = this.deps.helpers().filter((c) => {
      const id = c.remotePeer.toString();
      if (seen.has(id) || this.#asked.has(id)) return false;
      seen.add(id);
      return true;
    });
    // Peers outside our LAN first: only they can prove reachability.
    fresh.sort((a, b) => Number(this.deps.isNear(a)) - Number(this.deps.isNear(b)));
    const chosen = fresh.slice(0, Math.max(0, budget));
    if (!chosen.length) return;
    for (const c of chosen) this.#asked.set(c.remotePeer.toString(), this.#now());
    let unanswered = false;
    await Promise.all(chosen.map(async (c) => {
      const r = await this.deps.ask(c, this.#shutdown.signal);
      if (this.#shutdown.signal.aborted || this.deps.addressesKey() !== key) return;
      this.deps.logger.debug("dial-back answer", { ...r });
      if (r.outcome === "error" || r.outcome === "refused") {
        // Not an answer about us: the helper is asked again a little later.
        this.#asked.delete(r.helper);
        unanswered = true;
        return;
      }
      this.#results.set(r.helper, { ...r, at: this.#now() });
      this.#decide();
    }));
    if (unanswered) this.kick(RETRY_MS);
  }

  #decide(): void {
    const attempts = [...this.#results.values()];
    const next = decideReachability(attempts, this.opts.minFailures);
    if (next === "unknown" || next === this.#verdict) return;
    const previous = this.#verdict;
    this.#verdict = next;
    this.deps.onVerdict(next, previous, attempts);
  }

  /** Stops timers and waits for checks under way. */
  async stop(): Promise<void> {
    this.setEnabled(false);
    this.#shutdown.abort();
    await Promise.allSettled([...this.#running]);
  }
}
