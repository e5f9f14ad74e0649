/**
 * Opens a byte connection to an endpoint: straight with Deno.connect when the endpoint is on
 * this node; for other nodes, with `lanDirect`, a direct attempt first (the verdict per IP
 * remembered for a while) and the Dialer (the tunnel) when the address is not reachable.
 */

import {
  type Dialer,
  DialError,
  type DialErrorCode,
  type DialTarget,
  type PathKind,
} from "../contracts/mod.ts";
import type { GatewayEndpoint } from "./picker.ts";
import { type UpstreamWire, wireFromByteStream, wireFromConn } from "./wire.ts";

export interface UpstreamConnector {
  connect(ep: GatewayEndpoint, signal: AbortSignal, timeoutMs: number): Promise<UpstreamWire>;
}

export interface ConnectorDeps {
  dialer: Dialer;
  nodeName: string;
  /** Try kernel TCP to endpoints on other nodes before the tunnel (edgeProxy.lanDirect). */
  lanDirect: boolean;
  /** Timeout of a direct attempt to another node. */
  lanConnectTimeoutMs: number;
  /** How long a direct-reachability verdict per IP is remembered. */
  lanVerdictTtlMs: number;
  now: () => number;
}

export function createConnector(deps: ConnectorDeps): UpstreamConnector {
  const verdicts = new Map<string, { reachable: boolean; until: number }>();
  const verdict = (ip: string) => {
    const v = verdicts.get(ip);
    if (v && v.until > deps.now()) return v.reachable;
    verdicts.delete(ip);
    return undefined;
  };
  const remember = (ip: string, reachable: boolean) => {
    if (verdicts.size >= 4096) verdicts.delete(verdicts.keys().next().value!);
    verdicts.set(ip, { reachable, until: deps.now() + deps.lanVerdictTtlMs });
  };
  return {
    async connect(ep, signal, timeoutMs) {
      const node = ep.nodeName ?? "";
      const target: DialTarget & { protocol: "tcp" } = {
        node,
        ip: ep.ip,
        port: ep.port,
        protocol: "tcp",
      };
      if (!ep.nodeName || node === deps.nodeName) {
        const path: PathKind = node === deps.nodeName ? "local" : "lan";
        return Object.assign(wireFromConn(await connectDirect(target, signal, timeoutMs)), {
          path,
        });
      }
      if (deps.lanDirect && verdict(ep.ip) !== false) {
        try {
          const conn = await connectDirect(
            target,
            signal,
            Math.min(timeoutMs, deps.lanConnectTimeoutMs),
          );
          remember(ep.ip, true);
          return Object.assign(wireFromConn(conn), { path: "lan" as const });
        } catch (err) {
          if (!(err instanceof DialError) || signal.aborted) throw err;
          // Refused: the host answered, so it is reachable and the endpoint is down.
          remember(ep.ip, err.code === "refused");
          if (err.code === "refused") throw err;
        }
      }
      return wireFromByteStream(await deps.dialer.dialStream(target, { signal, timeoutMs }));
    },
  };
}

/** Deno.connect bounded by a timeout and a signal; failures become DialErrors. */
export async function connectDirect(
  target: DialTarget,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  const pending = Deno.connect({ hostname: target.ip, port: target.port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DialError("timeout", target, `no connection within ${timeoutMs} ms`)),
      timeoutMs,
    );
    onAbort = () => reject(new DialError("timeout", target, "aborted", { cause: signal.reason }));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([pending, stop]);
  } catch (err) {
    // A connection that arrives after the deadline is closed, not leaked.
    pending.then((c) => c.close(), () => {});
    if (err instanceof DialError) throw err;
    throw new DialError(codeOf(err), target, err instanceof Error ? err.message : String(err), {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort!);
  }
}

function codeOf(err: unknown): DialErrorCode {
  if (err instanceof Deno.errors.ConnectionRefused) return "refused";
  if (err instanceof Deno.errors.TimedOut) return "timeout";
  return "unreachable";
}
