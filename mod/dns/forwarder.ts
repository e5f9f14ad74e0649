/**
 * The forwarder: answers names outside the cluster zone from the cache or from the upstream
 * servers (UDP, TCP when truncated, failover to the next server, one total deadline), and
 * coalesces identical queries in flight.
 */

import type { Logger } from "../log/mod.ts";
import { LogRateLimiter } from "../log/mod.ts";
import type { Alloc } from "./arena.ts";
import { type AnswerCache, renderStored, type StoredAnswer, storeForm } from "./cache.ts";
import { UpstreamError } from "./errors.ts";
import type { DnsMetrics } from "./metrics.ts";
import type { Upstream } from "./options.ts";
import type { UpstreamClient } from "./upstream.ts";
import { FLAG, type ParsedQuery, RCODE } from "./wire.ts";
import { emptyResponse, OPT_LENGTH, writeOpt } from "./response.ts";

export interface ForwarderDeps {
  client: UpstreamClient;
  cache: AnswerCache;
  metrics: DnsMetrics;
  logger: Logger;
  /** Clock for the cache (epoch or monotonic ms). */
  now: () => number;
}

export interface ForwarderSettings {
  upstreams: readonly Upstream[];
  upstreamTimeoutMs: number;
  upstreamAttemptTimeoutMs: number;
  maxUdpPayload: number;
  maxInflightForwards: number;
  cacheMaxTtlMs: number;
}

/** Per-upstream counters for status(). */
export interface UpstreamStatus {
  address: string;
  queries: number;
  failures: number;
  consecutiveFailures: number;
  lastError?: string;
  /** True while this is the server tried first. */
  preferred: boolean;
}

export interface ForwardResult {
  bytes: Uint8Array;
  source: "cache" | "upstream";
}

export class Forwarder {
  #preferred = 0;
  #inflight = new Map<string, Promise<StoredAnswer | undefined>>();
  #stats: Omit<UpstreamStatus, "preferred">[];
  #warn = new LogRateLimiter(3, 10_000);

  constructor(private readonly deps: ForwarderDeps, private readonly settings: ForwarderSettings) {
    this.#stats = settings.upstreams.map((u) => ({
      address: u.label,
      queries: 0,
      failures: 0,
      consecutiveFailures: 0,
    }));
  }

  status(): UpstreamStatus[] {
    return this.#stats.map((s, i) => ({ ...s, preferred: i === this.#preferred }));
  }

  #key(query: Uint8Array, q: ParsedQuery): string {
    return `${q.qname}|${q.qtype}|${q.qclass}|${q.dnssecOk ? 1 : 0}|${query[3] & 0x10 ? 1 : 0}`;
  }

  /** The answer from the cache, synchronously, or undefined on a miss. */
  cached(query: Uint8Array, q: ParsedQuery, alloc?: Alloc): Uint8Array | undefined {
    const hit = this.deps.cache.get(this.#key(query, q));
    if (!hit) return undefined;
    this.deps.metrics.cacheHits.inc();
    return renderStored(hit.answer, query, q, hit.ageMs, this.settings.maxUdpPayload, alloc);
  }

  /**
   * Resolves `query` (owned by the forwarder from now on) for the client: from the cache,
   * else from the upstreams, sharing one exchange among identical queries in flight.
   */
  async resolve(query: Uint8Array, q: ParsedQuery): Promise<ForwardResult> {
    const hit = this.cached(query, q);
    if (hit) return { bytes: hit, source: "cache" };
    this.deps.metrics.cacheMisses.inc();
    const key = this.#key(query, q);
    let pending = this.#inflight.get(key);
    if (!pending) {
      if (this.#inflight.size >= this.settings.maxInflightForwards) {
        this.deps.metrics.dropped.inc({ reason: "forward_overload" });
        return { bytes: this.#servfail(query, q), source: "upstream" };
      }
      pending = this.#exchange(query, q).then((stored) => {
        if (stored) this.deps.cache.set(key, stored);
        return stored;
      }).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    const stored = await pending;
    if (!stored) return { bytes: this.#servfail(query, q), source: "upstream" };
    return {
      bytes: renderStored(stored, query, q, 0, this.settings.maxUdpPayload),
      source: "upstream",
    };
  }

  #servfail(query: Uint8Array, q: ParsedQuery): Uint8Array {
    return emptyResponse(
      query,
      q.questionEnd,
      RCODE.SERVFAIL,
      0,
      q.edns ? { udpSize: this.settings.maxUdpPayload } : undefined,
    );
  }

  /** The query we send upstream: RD/CD from the client, the question, our OPT. */
  #upstreamQuery(query: Uint8Array, q: ParsedQuery): Uint8Array {
    const out = new Uint8Array(q.questionEnd + OPT_LENGTH);
    out.set(query.subarray(0, q.questionEnd));
    out[2] = query[2] & 0x01;
    out[3] = query[3] & 0x10;
    out[6] =
      out[7] =
      out[8] =
      out[9] =
      out[10] =
        0;
    out[11] = 1;
    writeOpt(out, q.questionEnd, this.settings.maxUdpPayload, 0, q.dnssecOk);
    return out;
  }

  async #exchange(query: Uint8Array, q: ParsedQuery): Promise<StoredAnswer | undefined> {
    const ups = this.settings.upstreams;
    if (ups.length === 0) return undefined;
    const uq = this.#upstreamQuery(query, q);
    const deadline = performance.now() + this.settings.upstreamTimeoutMs;
    const start = this.#preferred;
    let lastFailure: StoredAnswer | undefined;
    for (let attempt = 0;; attempt++) {
      const remaining = Math.floor(deadline - performance.now());
      if (remaining <= 0 || attempt >= ups.length * 4 || this.deps.client.closed) break;
      const index = (start + attempt) % ups.length;
      const up = ups[index];
      const stat = this.#stats[index];
      stat.queries++;
      try {
        let resp = await this.deps.client.exchangeUdp(
          up,
          uq,
          q.questionEnd,
          Math.min(this.settings.upstreamAttemptTimeoutMs, remaining),
        );
        if (resp[2] & (FLAG.TC >> 8)) {
          const left = Math.max(1, Math.floor(deadline - performance.now()));
          resp = await this.deps.client.exchangeTcp(up, uq, q.questionEnd, left);
        }
        const stored = storeForm(resp, q.questionEnd, this.settings.cacheMaxTtlMs);
        if (!stored) throw new UpstreamError("malformed", up.label, "malformed answer");
        if (stored.rcode === RCODE.SERVFAIL || stored.rcode === RCODE.REFUSED) {
          lastFailure = { ...stored, cacheMs: 0 };
          throw new UpstreamError(
            stored.rcode === RCODE.SERVFAIL ? "servfail" : "refused",
            up.label,
            `answered ${stored.rcode === RCODE.SERVFAIL ? "SERVFAIL" : "REFUSED"}`,
          );
        }
        stat.consecutiveFailures = 0;
        this.#preferred = index;
        return stored;
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        stat.failures++;
        stat.consecutiveFailures++;
        stat.lastError = err.message;
        this.deps.metrics.upstreamErrors.inc({ upstream: up.label, reason: err.reason });
        const suppressed = this.#warn.allow(up.label);
        if (suppressed !== undefined) {
          this.deps.logger.warn("upstream DNS query failed", {
            upstream: up.label,
            reason: err.reason,
            error: err.message,
            suppressed,
          });
        }
        if (stat.consecutiveFailures >= 1 && this.#preferred === index && ups.length > 1) {
          this.#preferred = (index + 1) % ups.length;
        }
      }
    }
    return lastFailure;
  }
}
