/**
 * Service `sessionAffinity: ClientIP`: a client IP sticks to the endpoint it got first for
 * `timeoutMs` after its last pick, as long as that endpoint is still acceptable.
 */

import type { Balancer, BalancerEnv, LbEndpoint, Picked, PickRequest } from "./balancer.ts";

export interface ClientIpAffinityOptions {
  /** From `sessionAffinityConfig.clientIP.timeoutSeconds` (default 10800 s). */
  timeoutMs: number;
  /** Bound on remembered clients; the oldest are forgotten first. Default 65536. */
  maxClients?: number;
}

export class ClientIpAffinity<E extends LbEndpoint> implements Balancer<E> {
  readonly description: string;
  readonly needs;
  readonly perRequest;
  /** clientIp → endpoint id and expiry; Map order = least recently used first. */
  #sticky = new Map<string, { id: string; expires: number }>();
  #byId = new Map<string, E>();

  constructor(
    private readonly inner: Balancer<E>,
    private readonly options: ClientIpAffinityOptions,
    private readonly env: Pick<BalancerEnv, "now">,
  ) {
    this.description = `${inner.description}+ClientIP(${Math.round(options.timeoutMs / 1000)}s)`;
    this.needs = inner.needs;
    this.perRequest = inner.perRequest;
  }

  update(endpoints: readonly E[]): void {
    this.inner.update(endpoints);
    this.#byId = new Map(endpoints.map((e) => [e.id, e]));
  }

  active(id: string): number {
    return this.inner.active(id);
  }

  pick(request: PickRequest, accept?: (e: E) => boolean): Picked<E> | undefined {
    const ip = request.clientIp;
    if (!ip) return this.inner.pick(request, accept);
    const now = this.env.now();
    const s = this.#sticky.get(ip);
    if (s) {
      this.#sticky.delete(ip);
      const ep = s.expires > now ? this.#byId.get(s.id) : undefined;
      if (ep && (!accept || accept(ep))) {
        this.#remember(ip, ep.id, now);
        return this.inner.pick(request, (e) => e.id === ep.id);
      }
    }
    const picked = this.inner.pick(request, accept);
    if (picked) this.#remember(ip, picked.endpoint.id, now);
    return picked;
  }

  #remember(ip: string, id: string, now: number): void {
    this.#sticky.set(ip, { id, expires: now + this.options.timeoutMs });
    const max = this.options.maxClients ?? 65536;
    while (this.#sticky.size > max) {
      this.#sticky.delete(this.#sticky.keys().next().value!);
    }
  }
}
