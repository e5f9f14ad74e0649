/**
 * From a DestinationRule (same name and namespace as the Service) to the policy of one
 * service port, and from a policy to a balancer. Port-level settings override the rule's
 * default; a malformed rule is rejected as a whole (the caller logs it and uses defaults).
 */

import type { DestinationRule, LoadBalancerSettings } from "../kube/types.ts";
import type { Balancer, BalancerEnv, LbEndpoint } from "./balancer.ts";
import { ClientIpAffinity } from "./affinity.ts";
import {
  ConsistentHashBalancer,
  DEFAULT_RING_OPTIONS,
  type HashKey,
  type RingOptions,
} from "./consistent_hash.ts";
import { InvalidDestinationRuleError } from "./errors.ts";
import { LeastRequestBalancer, RandomBalancer, RoundRobinBalancer } from "./simple.ts";

export type SimplePolicy = "ROUND_ROBIN" | "RANDOM" | "LEAST_REQUEST";

export type LbPolicy = { kind: "simple"; simple: SimplePolicy } | { kind: "hash"; key: HashKey };

export const DEFAULT_POLICY: LbPolicy = Object.freeze({ kind: "simple", simple: "ROUND_ROBIN" });

/** A validated rule: the default policy and the per-port overrides. */
export interface ParsedRule {
  defaultPolicy?: LbPolicy;
  ports: ReadonlyMap<number, LbPolicy>;
}

/** Validates a DestinationRule; throws InvalidDestinationRuleError listing every problem. */
export function parseDestinationRule(dr: DestinationRule): ParsedRule {
  const problems: string[] = [];
  const spec = dr.spec;
  const tp = spec?.trafficPolicy;
  if (spec !== undefined && (typeof spec !== "object" || spec === null)) {
    problems.push("spec: not an object");
  }
  if (tp !== undefined && (typeof tp !== "object" || tp === null)) {
    problems.push("spec.trafficPolicy: not an object");
  }
  const path = "spec.trafficPolicy";
  const defaultPolicy = tp?.loadBalancer !== undefined
    ? parseSettings(tp.loadBalancer, `${path}.loadBalancer`, problems)
    : undefined;
  const ports = new Map<number, LbPolicy>();
  const pls = tp?.portLevelSettings;
  if (pls !== undefined && !Array.isArray(pls)) {
    problems.push(`${path}.portLevelSettings: not a list`);
  } else {
    (pls ?? []).forEach((s, i) => {
      const p = `${path}.portLevelSettings[${i}]`;
      const num = s?.port?.number;
      if (!Number.isInteger(num) || num! < 1 || num! > 65535) {
        problems.push(`${p}.port.number: must be a port number, got ${JSON.stringify(num)}`);
        return;
      }
      if (s.loadBalancer === undefined) return;
      const pol = parseSettings(s.loadBalancer, `${p}.loadBalancer`, problems);
      if (pol) ports.set(num!, pol);
    });
  }
  if (problems.length > 0) {
    throw new InvalidDestinationRuleError(
      dr.metadata?.namespace ?? "default",
      dr.metadata?.name ?? "",
      problems,
    );
  }
  return { defaultPolicy, ports };
}

/** The policy for one service port: the port-level override, else the rule's default. */
export function policyForPort(rule: ParsedRule | undefined, port: number): LbPolicy {
  return rule?.ports.get(port) ?? rule?.defaultPolicy ?? DEFAULT_POLICY;
}

function parseSettings(
  lb: LoadBalancerSettings,
  path: string,
  problems: string[],
): LbPolicy | undefined {
  if (typeof lb !== "object" || lb === null) {
    problems.push(`${path}: not an object`);
    return undefined;
  }
  if (lb.simple !== undefined && lb.consistentHash !== undefined) {
    problems.push(`${path}: set either simple or consistentHash, not both`);
    return undefined;
  }
  if (lb.consistentHash !== undefined) {
    return parseHash(lb.consistentHash, `${path}.consistentHash`, problems);
  }
  switch (lb.simple) {
    case undefined:
    case "UNSPECIFIED":
    case "PASSTHROUGH":
    case "ROUND_ROBIN":
      return { kind: "simple", simple: "ROUND_ROBIN" };
    case "RANDOM":
      return { kind: "simple", simple: "RANDOM" };
    case "LEAST_REQUEST":
    case "LEAST_CONN":
      return { kind: "simple", simple: "LEAST_REQUEST" };
    default:
      problems.push(`${path}.simple: unknown policy ${JSON.stringify(lb.simple)}`);
      return undefined;
  }
}

function parseHash(
  ch: NonNullable<LoadBalancerSettings["consistentHash"]>,
  path: string,
  problems: string[],
): LbPolicy | undefined {
  if (typeof ch !== "object" || ch === null) {
    problems.push(`${path}: not an object`);
    return undefined;
  }
  const keys: HashKey[] = [];
  if (ch.httpHeaderName !== undefined) {
    if (
      typeof ch.httpHeaderName !== "string" ||
      !/^[!#$%&'*+.^_`|~0-9A-Za-z:-]+$/.test(ch.httpHeaderName)
    ) {
      problems.push(
        `${path}.httpHeaderName: not a header name: ${JSON.stringify(ch.httpHeaderName)}`,
      );
    } else keys.push({ kind: "header", name: ch.httpHeaderName.toLowerCase() });
  }
  if (ch.httpCookie !== undefined) {
    const c = ch.httpCookie;
    if (
      typeof c !== "object" || c === null || typeof c.name !== "string" ||
      !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(c.name)
    ) {
      problems.push(`${path}.httpCookie.name: not a cookie name: ${JSON.stringify(c?.name)}`);
    } else {
      const ttlMs = c.ttl === undefined ? 0 : parseDurationMs(c.ttl);
      if (ttlMs === undefined) {
        problems.push(`${path}.httpCookie.ttl: not a duration: ${JSON.stringify(c.ttl)}`);
      } else if (c.path !== undefined && (typeof c.path !== "string" || !c.path.startsWith("/"))) {
        problems.push(`${path}.httpCookie.path: must start with "/": ${JSON.stringify(c.path)}`);
      } else keys.push({ kind: "cookie", name: c.name, path: c.path ?? "/", ttlMs });
    }
  }
  if (ch.useSourceIp !== undefined) {
    if (typeof ch.useSourceIp !== "boolean") problems.push(`${path}.useSourceIp: not a boolean`);
    else if (ch.useSourceIp) keys.push({ kind: "sourceIp" });
  }
  if (ch.httpQueryParameterName !== undefined) {
    if (typeof ch.httpQueryParameterName !== "string" || ch.httpQueryParameterName === "") {
      problems.push(`${path}.httpQueryParameterName: not a parameter name`);
    } else keys.push({ kind: "query", name: ch.httpQueryParameterName });
  }
  if (keys.length !== 1) {
    problems.push(`${path}: exactly one hash key is required, got ${keys.length}`);
    return undefined;
  }
  return { kind: "hash", key: keys[0] };
}

/** Istio/protobuf duration ("10s", "1.5s", "2m", "1h", "100ms"); undefined when malformed. */
export function parseDurationMs(v: unknown): number | undefined {
  if (typeof v !== "string") return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) return undefined;
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Math.round(Number(m[1]) * mult);
}

export interface CreateBalancerOptions {
  ring?: Partial<RingOptions>;
  /** Service `sessionAffinity: ClientIP` timeout; applies to simple policies only. */
  clientIpAffinityMs?: number;
}

/** Builds the balancer for a policy. */
export function createBalancer<E extends LbEndpoint>(
  policy: LbPolicy,
  env: Partial<BalancerEnv> = {},
  options: CreateBalancerOptions = {},
): Balancer<E> {
  const full: BalancerEnv = { random: env.random ?? Math.random, now: env.now ?? Date.now };
  let b: Balancer<E>;
  if (policy.kind === "hash") {
    return new ConsistentHashBalancer<E>(
      policy.key,
      { ...DEFAULT_RING_OPTIONS, ...options.ring },
      full,
    );
  }
  switch (policy.simple) {
    case "RANDOM":
      b = new RandomBalancer<E>(full);
      break;
    case "LEAST_REQUEST":
      b = new LeastRequestBalancer<E>(full);
      break;
    default:
      b = new RoundRobinBalancer<E>();
  }
  if (options.clientIpAffinityMs !== undefined && options.clientIpAffinityMs > 0) {
    b = new ClientIpAffinity<E>(b, { timeoutMs: options.clientIpAffinityMs }, full);
  }
  return b;
}

/** A stable string for a policy, to know when a balancer must be rebuilt. */
export function policyKey(p: LbPolicy): string {
  return JSON.stringify(p);
}
