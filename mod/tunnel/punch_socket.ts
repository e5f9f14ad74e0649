/**
 * The socket side of a hole punch: a burst of simultaneous-open connect attempts from a fixed
 * local port (`node:net`: Deno's own `connect` cannot choose the local port).
 */

import net from "node:net";
import type { PunchOptions } from "./punch.ts";
import type { PunchAddr } from "./punch_wire.ts";

/** Cap on connect attempts in one burst (a refused attempt takes ~0.1–0.3 ms). */
const MAX_ATTEMPTS = 50_000;

/**
 * Raw connect attempts from `localPort` to `remote` until one connects, the window closes or
 * `opts`' attempt cap is reached. A refused attempt (the remote NAT answers an early SYN
 * with RST) is retried after `retryMs` (0: at once); a pending one (a NAT that drops early
 * SYNs) is left to complete within the window.
 */
export async function connectBurst(
  remote: PunchAddr,
  localPort: number,
  opts: Pick<PunchOptions, "windowMs" | "retryMs">,
  signal: AbortSignal,
): Promise<{ socket?: net.Socket; attempts: number; errors: Record<string, number> }> {
  const until = performance.now() + opts.windowMs;
  const errors: Record<string, number> = {};
  let attempts = 0;
  while (performance.now() < until && attempts < MAX_ATTEMPTS && !signal.aborted) {
    attempts++;
    const r = await connectOnce(remote, localPort, until - performance.now(), signal);
    if (r instanceof net.Socket) return { socket: r, attempts, errors };
    errors[r] = (errors[r] ?? 0) + 1;
    if (opts.retryMs > 0 && performance.now() < until) await sleep(opts.retryMs, signal);
  }
  return { attempts, errors };
}

/** One connect attempt: the socket, or an error code. */
function connectOnce(
  remote: PunchAddr,
  localPort: number,
  ms: number,
  signal: AbortSignal,
): Promise<net.Socket | string> {
  return new Promise((resolve) => {
    const s = net.connect({
      host: remote.ip,
      port: remote.port,
      localPort,
      noDelay: true,
      keepAlive: true,
    });
    const done = (v: net.Socket | string) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      s.removeListener("connect", onConnect);
      s.removeListener("error", onError);
      if (typeof v === "string") s.destroy();
      resolve(v);
    };
    const onConnect = () => done(s);
    const onError = (err: Error) => done((err as { code?: string }).code ?? err.name);
    const onAbort = () => done("ABORTED");
    const timer = setTimeout(() => done("WINDOW_CLOSED"), Math.max(1, ms));
    s.once("connect", onConnect);
    s.once("error", onError);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** A TCP port free right now (bound and released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
