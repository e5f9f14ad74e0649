/** What HTTP and TCP proxying share: the live route table, weighted choice and connecting. */

import { DialError } from "../contracts/mod.ts";
import { BufReader } from "./buf_reader.ts";
import type { Logger } from "../log/mod.ts";
import { type DestinationResolver, NoEndpointReason } from "./destinations.ts";
import type { GatewayMetrics } from "./metrics.ts";
import type { WeightedDestination } from "./model.ts";
import type { GatewayEndpoint, PickContext } from "./picker.ts";
import type { RouteTable } from "./route_table.ts";
import type { UpstreamConnector } from "./upstream.ts";
import type { UpstreamPool } from "./upstream_pool.ts";
import type { UpstreamWire } from "./wire.ts";

export interface Limits {
  maxHeaderBytes: number;
  maxHeaderCount: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  /** Idle limit of TCP/TLS connections (no bytes either way). */
  tcpIdleTimeoutMs: number;
  connectTimeoutMs: number;
  /** Endpoints tried per attempt when connecting fails with a retryable error. */
  connectTries: number;
}

export interface ProxyContext {
  table(): RouteTable;
  resolver: DestinationResolver;
  connector: UpstreamConnector;
  metrics: GatewayMetrics;
  log: Logger;
  limits: Limits;
  random: () => number;
  /** Idle keep-alive connections to HTTP upstreams. */
  pool: UpstreamPool;
  /** Aborted when the gateway stops: in-flight upstream work is cut. */
  signal: AbortSignal;
  /** Aborted when stop() begins: idle keep-alive connections close, no new requests. */
  draining: AbortSignal;
}

/** A signal aborted by `parent` or after `ms` (Infinity: never); dispose() detaches both. */
export interface ScopedAbort {
  readonly signal: AbortSignal;
  /** True when the deadline (not the parent) aborted it. */
  timedOut(): boolean;
  dispose(): void;
}

/**
 * Like AbortSignal.any([parent, AbortSignal.timeout(ms)]) but without leaving a listener on
 * the long-lived parent or a timer behind once the work is done.
 */
export function scopedAbort(parent: AbortSignal, ms: number): ScopedAbort {
  const ac = new AbortController();
  let timedOut = false;
  const onParent = () => ac.abort(parent.reason);
  if (parent.aborted) onParent();
  else parent.addEventListener("abort", onParent, { once: true });
  const timer = Number.isFinite(ms)
    ? setTimeout(() => {
      timedOut = true;
      ac.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError"));
    }, ms)
    : undefined;
  return {
    signal: ac.signal,
    timedOut: () => timedOut,
    dispose() {
      clearTimeout(timer);
      parent.removeEventListener("abort", onParent);
    },
  };
}

export function pickWeighted(
  list: readonly WeightedDestination[],
  random: () => number,
): WeightedDestination {
  const total = list.reduce((s, d) => s + d.weight, 0);
  let x = random() * total;
  for (const d of list) {
    if (d.weight <= 0) continue;
    x -= d.weight;
    if (x < 0) return d;
  }
  return list.findLast((d) => d.weight > 0) ?? list[0];
}

export interface Connected {
  wire: UpstreamWire;
  /** The only reader of `wire.readable`, and its buffer. */
  reader: ReadableStreamDefaultReader<Uint8Array>;
  buf: BufReader;
  endpoint: GatewayEndpoint;
  setCookie?: string;
  /** True when the connection came from the keep-alive pool. */
  reused: boolean;
  release(): void;
}

/**
 * Picks endpoints of `dest` and connects, moving to another endpoint on retryable dial
 * errors. Returns a NoEndpointReason when nothing could be reached.
 */
export async function connectDestination(
  ctx: ProxyContext,
  dest: WeightedDestination,
  pick: PickContext,
  signal: AbortSignal,
  avoid: Set<string>,
  pool?: UpstreamPool,
): Promise<Connected | NoEndpointReason> {
  const resolved = ctx.resolver.resolve(dest.destination);
  if (resolved instanceof NoEndpointReason) return resolved;
  if (resolved.endpoints.length === 0) {
    return new NoEndpointReason(`no healthy endpoint for ${resolved.key}`);
  }
  let lastError: unknown;
  for (let i = 0; i < ctx.limits.connectTries; i++) {
    const picked = resolved.picker.pick(resolved.endpoints, pick, (e) => !avoid.has(e.id)) ??
      resolved.picker.pick(resolved.endpoints, pick);
    if (!picked) break;
    const ep = picked.endpoint;
    avoid.add(ep.id);
    const release = () => picked.release();
    const idle = pool?.take(ep.id);
    if (idle) return { ...idle, endpoint: ep, setCookie: picked.setCookie, reused: true, release };
    try {
      const wire = await ctx.connector.connect(ep, signal, ctx.limits.connectTimeoutMs);
      ctx.metrics.upstreams.inc({ path: wire.path, result: "ok" });
      const reader = wire.readable.getReader();
      const buf = new BufReader(reader);
      return {
        wire,
        reader,
        buf,
        endpoint: ep,
        setCookie: picked.setCookie,
        reused: false,
        release,
      };
    } catch (err) {
      picked.release();
      if (!(err instanceof DialError)) throw err;
      ctx.metrics.upstreams.inc({ path: "unknown", result: err.code });
      lastError = err;
      ctx.log.debug("upstream connect failed", {
        destination: resolved.key,
        endpoint: ep.id,
        error: err,
      });
      if (!err.retryable || signal.aborted) break;
    }
  }
  const why = lastError instanceof Error ? lastError.message : "no endpoint";
  return new NoEndpointReason(`no endpoint of ${resolved.key} reachable: ${why}`);
}
