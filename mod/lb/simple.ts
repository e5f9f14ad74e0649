/** The `simple` policies: ROUND_ROBIN, RANDOM and LEAST_REQUEST. */

import {
  type Balancer,
  type BalancerEnv,
  type LbEndpoint,
  LoadTracker,
  type Picked,
  type PickRequest,
} from "./balancer.ts";

abstract class ListBalancer<E extends LbEndpoint> implements Balancer<E> {
  abstract readonly description: string;
  readonly needs = "none" as const;
  readonly perRequest = false;
  protected endpoints: readonly E[] = [];
  protected readonly load = new LoadTracker();

  update(endpoints: readonly E[]): void {
    this.endpoints = [...endpoints];
  }
  active(id: string): number {
    return this.load.active(id);
  }
  abstract pick(request: PickRequest, accept?: (e: E) => boolean): Picked<E> | undefined;
}

/** Cycles through the endpoints in order, skipping those not accepted. */
export class RoundRobinBalancer<E extends LbEndpoint> extends ListBalancer<E> {
  readonly description = "ROUND_ROBIN";
  #next = 0;

  pick(_request: PickRequest, accept?: (e: E) => boolean): Picked<E> | undefined {
    const list = this.endpoints;
    const n = list.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.#next + i) % n;
      const ep = list[idx];
      if (accept && !accept(ep)) continue;
      this.#next = (idx + 1) % n;
      return this.load.acquire(ep);
    }
    return undefined;
  }
}

/** Uniformly random among the accepted endpoints. */
export class RandomBalancer<E extends LbEndpoint> extends ListBalancer<E> {
  readonly description = "RANDOM";
  constructor(private readonly env: Pick<BalancerEnv, "random">) {
    super();
  }

  pick(_request: PickRequest, accept?: (e: E) => boolean): Picked<E> | undefined {
    const list = accept ? this.endpoints.filter(accept) : this.endpoints;
    if (list.length === 0) return undefined;
    const idx = Math.min(list.length - 1, Math.floor(this.env.random() * list.length));
    return this.load.acquire(list[idx]);
  }
}

/** Fewest in-flight picks wins; ties broken at random. */
export class LeastRequestBalancer<E extends LbEndpoint> extends ListBalancer<E> {
  readonly description = "LEAST_REQUEST";
  constructor(private readonly env: Pick<BalancerEnv, "random">) {
    super();
  }

  pick(_request: PickRequest, accept?: (e: E) => boolean): Picked<E> | undefined {
    let best: E[] = [];
    let bestLoad = Infinity;
    for (const ep of this.endpoints) {
      if (accept && !accept(ep)) continue;
      const l = this.load.active(ep.id);
      if (l < bestLoad) {
        bestLoad = l;
        best = [ep];
      } else if (l === bestLoad) best.push(ep);
    }
    if (best.length === 0) return undefined;
    const idx = Math.min(best.length - 1, Math.floor(this.env.random() * best.length));
    return this.load.acquire(best[idx]);
  }
}
