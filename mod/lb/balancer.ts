/** The one `Balancer` interface every load-balancing policy implements. */

/** Anything a balancer can choose; `id` is stable across updates (e.g. "10.0.0.7:8080"). */
export interface LbEndpoint {
  readonly id: string;
}

/**
 * What the proxy knows about a request. L4 connections fill `clientIp` only; the HTTP path
 * also answers header/cookie/query look-ups (names compared case-insensitively for headers).
 */
export interface PickRequest {
  /** The client IP alone (no port). */
  clientIp?: string;
  header?(name: string): string | undefined;
  cookie?(name: string): string | undefined;
  query?(name: string): string | undefined;
}

/** One choice. `release()` must be called once when the request/connection ends. */
export interface Picked<E extends LbEndpoint> {
  readonly endpoint: E;
  /** A `Set-Cookie` header value the proxy must add to the response (cookie hash, absent cookie). */
  readonly setCookie?: string;
  release(): void;
}

/** Which part of a request the proxy must parse before calling `pick()`. */
export type BalancerNeeds = "none" | "http";

export interface Balancer<E extends LbEndpoint> {
  /** "ROUND_ROBIN", "RANDOM", "LEAST_REQUEST", "CONSISTENT_HASH(header:x-user)", … */
  readonly description: string;
  readonly needs: BalancerNeeds;
  /** True when each request on a keep-alive connection may go elsewhere (hash on request data). */
  readonly perRequest: boolean;
  /** Replaces the endpoint set; in-flight counts of surviving endpoints are kept. */
  update(endpoints: readonly E[]): void;
  /**
   * Chooses among the endpoints `accept` lets through (all when absent). Undefined when none
   * is acceptable.
   */
  pick(request: PickRequest, accept?: (endpoint: E) => boolean): Picked<E> | undefined;
  /** Picks not yet released for this endpoint id. */
  active(id: string): number;
}

/** Injected randomness and clock; both default to the real ones in `createBalancer`. */
export interface BalancerEnv {
  /** Uniform in [0, 1). */
  random: () => number;
  /** Milliseconds. */
  now: () => number;
}

/** Tracks in-flight picks per endpoint id; shared by all policies. */
export class LoadTracker {
  #active = new Map<string, number>();
  #total = 0;

  get total(): number {
    return this.#total;
  }
  active(id: string): number {
    return this.#active.get(id) ?? 0;
  }
  acquire<E extends LbEndpoint>(endpoint: E, setCookie?: string): Picked<E> {
    const id = endpoint.id;
    this.#active.set(id, this.active(id) + 1);
    this.#total++;
    let released = false;
    return {
      endpoint,
      setCookie,
      release: () => {
        if (released) return;
        released = true;
        const n = this.active(id) - 1;
        if (n > 0) this.#active.set(id, n);
        else this.#active.delete(id);
        this.#total--;
      },
    };
  }
}
