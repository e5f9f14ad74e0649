/**
 * One proxied service port: its served endpoints, its balancer, locality tiers and passive
 * outlier marks (an endpoint that failed a connect is avoided for a growing backoff).
 */

import type { Balancer, Picked, PickRequest } from "../lb/mod.ts";
import type { Connector } from "./connector.ts";
import type { ProxyEndpoint, ProxyPort } from "./service_table.ts";

const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

export class PortState {
  #down = new Map<string, { until: number; failures: number }>();
  #served: ProxyEndpoint[] = [];
  /** Metric labels of this port (`service`, `port`); the same object for its whole life. */
  labels!: { readonly service: string; readonly port: string };

  constructor(
    public entry: ProxyPort,
    public balancer: Balancer<ProxyEndpoint>,
    public policyKey: string,
    private readonly deps: { connector: Connector; now: () => number; nodeName: string },
  ) {
    this.update(entry, balancer, policyKey);
  }

  update(entry: ProxyPort, balancer: Balancer<ProxyEndpoint>, policyKey: string): void {
    this.entry = entry;
    const service = `${entry.namespace}/${entry.name}`;
    const port = `${entry.port}/${entry.protocol}`;
    if (this.labels?.service !== service || this.labels.port !== port) {
      this.labels = Object.freeze({ service, port });
    }
    this.policyKey = policyKey;
    this.#served = entry.endpoints.filter((e) =>
      e.served && (!entry.localOnly || e.node === this.deps.nodeName)
    );
    this.balancer = balancer;
    balancer.update(this.#served);
    const ids = new Set(this.#served.map((e) => e.id));
    for (const id of this.#down.keys()) if (!ids.has(id)) this.#down.delete(id);
  }

  /** True when some endpoint may serve (iptables REJECTs the port otherwise). */
  hasEndpoints(): boolean {
    return this.#served.length > 0;
  }

  /** 0 this node, 1 reachable directly (or not yet known), 2 only through the tunnel. */
  tier(ep: ProxyEndpoint): number {
    if (ep.node === this.deps.nodeName) return 0;
    return this.deps.connector.expectedPath(ep) === "tunnel" ? 2 : 1;
  }

  isDown(id: string): boolean {
    const d = this.#down.get(id);
    return !!d && d.until > this.deps.now();
  }

  /**
   * Picks from the nearest tier that has an acceptable endpoint, skipping endpoints marked
   * down unless every candidate is (then they are tried anyway).
   */
  pick(request: PickRequest, exclude: ReadonlySet<string>): Picked<ProxyEndpoint> | undefined {
    for (const skipDown of [true, false]) {
      let best = 3;
      for (const ep of this.#served) {
        if (exclude.has(ep.id) || (skipDown && this.isDown(ep.id))) continue;
        best = Math.min(best, this.tier(ep));
      }
      if (best === 3) continue;
      const p = this.balancer.pick(
        request,
        (ep) => !exclude.has(ep.id) && !(skipDown && this.isDown(ep.id)) && this.tier(ep) === best,
      );
      if (p) return p;
    }
    return undefined;
  }

  markFailure(id: string): void {
    const failures = (this.#down.get(id)?.failures ?? 0) + 1;
    const ms = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1));
    this.#down.set(id, { until: this.deps.now() + ms, failures });
  }

  markSuccess(id: string): void {
    this.#down.delete(id);
  }
}
