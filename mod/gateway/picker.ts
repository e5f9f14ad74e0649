/**
 * The seam to the load balancers: the gateway asks an `EndpointPicker` for one endpoint of a
 * destination. The default factory (`lbPickers`) is backed by mod/lb; tests may pass
 * `roundRobinPickers`.
 */

import type { LoadBalancerSettings } from "../kube/mod.ts";
import {
  type Balancer,
  createBalancer,
  DEFAULT_POLICY,
  InvalidDestinationRuleError,
  parseDestinationRule,
} from "../lb/mod.ts";
import type { Logger } from "../log/mod.ts";

/** One usable endpoint of a destination (already filtered by subset and health). */
export interface GatewayEndpoint {
  ip: string;
  port: number;
  nodeName?: string;
  /** Stable identity: `ip:port`. */
  readonly id: string;
}

/** Request facts a hashing balancer may use (mod/lb's PickRequest). */
export interface PickContext {
  clientIp: string;
  /** Case-insensitive header look-up (HTTP only). */
  header?(name: string): string | undefined;
  cookie?(name: string): string | undefined;
  query?(name: string): string | undefined;
}

export interface PickedEndpoint {
  readonly endpoint: GatewayEndpoint;
  /** A Set-Cookie value to add to the response (cookie hashing). */
  readonly setCookie?: string;
  /** Called once when the request/connection on this endpoint ends. */
  release(): void;
}

export interface EndpointPicker {
  /** One endpoint out of `endpoints` that `accept` lets through, or undefined. */
  pick(
    endpoints: readonly GatewayEndpoint[],
    ctx: PickContext,
    accept?: (e: GatewayEndpoint) => boolean,
  ): PickedEndpoint | undefined;
}

/**
 * Makes the picker of one destination (`ns/service:port[/subset]`), given the
 * DestinationRule's load balancer settings (undefined: none). Called again only when the
 * settings change, so a picker keeps its state (round-robin position, ring) between requests.
 */
export type PickerFactory = (
  key: string,
  policy: LoadBalancerSettings | undefined,
) => EndpointPicker;

/** A plain round robin, ignoring the policy (for tests). */
export const roundRobinPickers: PickerFactory = () => {
  let next = 0;
  return {
    pick(endpoints, _ctx, accept) {
      const list = accept ? endpoints.filter(accept) : endpoints;
      if (list.length === 0) return undefined;
      const endpoint = list[next++ % list.length];
      return { endpoint, release: () => {} };
    },
  };
};

/** Pickers backed by mod/lb balancers; an invalid policy is logged and ROUND_ROBIN used. */
export function lbPickers(log: Logger, random: () => number = Math.random): PickerFactory {
  return (key, settings) => {
    let policy = DEFAULT_POLICY;
    if (settings) {
      try {
        policy = parseDestinationRule({
          metadata: { name: key },
          spec: { trafficPolicy: { loadBalancer: settings } },
        }).defaultPolicy ??
          DEFAULT_POLICY;
      } catch (err) {
        if (!(err instanceof InvalidDestinationRuleError)) throw err;
        log.warn("load balancer settings ignored, using ROUND_ROBIN", {
          destination: key,
          problems: err.problems,
        });
      }
    }
    const balancer: Balancer<GatewayEndpoint> = createBalancer<GatewayEndpoint>(policy, { random });
    let sig = "";
    return {
      pick(endpoints, ctx, accept) {
        const s = endpoints.map((e) => e.id).join(",");
        if (s !== sig) {
          balancer.update(endpoints);
          sig = s;
        }
        return balancer.pick(ctx, accept);
      },
    };
  };
}
