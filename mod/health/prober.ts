/**
 * One probe of a peer: a TCP connect plus `GET /healthz` to its health agent (the answer must
 * name the expected node), and optionally a TCP connect to its kubelet/edgecore port. Each
 * attempt is bounded by a timeout; failed attempts are retried within the round. With a
 * Dialer, a peer that fails the direct probe is probed once more through the tunnel (the same
 * request to the same health agent): a member reachable only through a relay is alive, and the
 * proxy reaches it that way too, so it must not be voted unhealthy.
 */

import type { Dialer } from "../contracts/mod.ts";
import { tunnelFetch } from "./tunnel_http.ts";

/** How a probe (and then the gossip exchange) reached the peer. */
export type ProbePath = "direct" | "tunnel";

export interface ProbeTarget {
  node: string;
  hostname: string;
  port: number;
  /** Also TCP-connect this port when > 0. */
  kubeletPort?: number;
  /**
   * Extra direct attempts after a failed one; default the `retries` option. With a Dialer the
   * tunnel gets the rest of `retries` (a member last reached through the tunnel: 0 here).
   */
  directRetries?: number;
}

export interface ProbeOutcome {
  ok: boolean;
  attempts: number;
  /** Why the last attempt failed. */
  error?: string;
  /** The path of the successful attempt, else of the last one tried. */
  path: ProbePath;
}

export interface ProbeOptions {
  timeoutMs: number;
  retries: number;
  signal?: AbortSignal;
  /** Fallback path through the tunnel to peers the direct probe cannot reach. */
  dialer?: Dialer;
}

export const HEALTHZ_PATH = "/healthz";
const MAX_RESPONSE = 8192;

/** Runs `fn` with a deadline; if it loses, `cleanup` releases whatever it produced late. */
async function withDeadline<T>(
  p: Promise<T>,
  ms: number,
  signal: AbortSignal | undefined,
  cleanup: (v: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  let lost = false;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms);
        onAbort = () => rej(signal!.reason ?? new Error("aborted"));
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } catch (err) {
    lost = true;
    throw err;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    if (lost) p.then(cleanup, () => {});
  }
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  }
}

async function connect(
  hostname: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Deno.Conn> {
  return await withDeadline(Deno.connect({ hostname, port }), timeoutMs, signal, closeQuietly);
}

async function healthGet(t: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const conn = await connect(t.hostname, t.port, timeoutMs, signal);
  try {
    const req =
      `GET ${HEALTHZ_PATH} HTTP/1.1\r\nHost: ${t.hostname}:${t.port}\r\nConnection: close\r\n\r\n`;
    const work = (async () => {
      await conn.write(new TextEncoder().encode(req));
      const buf = new Uint8Array(MAX_RESPONSE);
      let len = 0;
      while (len < buf.length) {
        const n = await conn.read(buf.subarray(len));
        if (n === null) break;
        len += n;
      }
      return new TextDecoder().decode(buf.subarray(0, len));
    })();
    const text = await withDeadline(work, Math.max(1, deadline - Date.now()), signal, () => {});
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
    checkAnswer(t, status, text.slice(text.indexOf("\r\n\r\n") + 4));
  } finally {
    closeQuietly(conn);
  }
}

/** The health endpoint must answer 200 with `{"node": <the expected node>}`. */
function checkAnswer(t: ProbeTarget, status: string | undefined, body: string): void {
  if (status !== "200") throw new Error(`health endpoint answered ${status ?? "garbage"}`);
  let node: unknown;
  try {
    node = JSON.parse(body).node;
  } catch {
    throw new Error("health endpoint answered a body that is not JSON");
  }
  if (node !== t.node) {
    throw new Error(`health endpoint belongs to node "${String(node)}", not "${t.node}"`);
  }
}

/** The same probe through the tunnel to the peer's node; its tunnel dials the ports locally. */
async function tunnelAttempt(
  t: ProbeTarget,
  dialer: Dialer,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const res = await tunnelFetch(dialer, t, { method: "GET", path: HEALTHZ_PATH }, {
    timeoutMs,
    maxBody: MAX_RESPONSE,
    signal,
  });
  checkAnswer(t, String(res.status), new TextDecoder().decode(res.body));
  if (t.kubeletPort && t.kubeletPort > 0) {
    const s = await withDeadline(
      dialer.dialStream(
        { protocol: "tcp", node: t.node, ip: t.hostname, port: t.kubeletPort },
        { signal, timeoutMs },
      ),
      timeoutMs,
      signal,
      (late) => late.close(),
    );
    s.close();
  }
}

async function attempt(t: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  await healthGet(t, timeoutMs, signal);
  if (t.kubeletPort && t.kubeletPort > 0) {
    const c = await connect(t.hostname, t.kubeletPort, timeoutMs, signal);
    closeQuietly(c);
  }
}

/**
 * Probes a target directly with `directRetries` extra attempts, then — with a Dialer —
 * through the tunnel with the remaining retries (at least one attempt). Never throws except
 * when `signal` aborts.
 */
export async function probe(t: ProbeTarget, opts: ProbeOptions): Promise<ProbeOutcome> {
  const directRetries = Math.min(t.directRetries ?? opts.retries, opts.retries);
  const paths: [ProbePath, number, () => Promise<void>][] = [
    ["direct", directRetries, () => attempt(t, opts.timeoutMs, opts.signal)],
  ];
  const dialer = opts.dialer;
  if (dialer) {
    paths.push([
      "tunnel",
      Math.max(0, opts.retries - directRetries),
      () => tunnelAttempt(t, dialer, opts.timeoutMs, opts.signal),
    ]);
  }
  let error = "";
  let attempts = 0;
  for (const [path, retries, run] of paths) {
    for (let i = 0; i <= retries; i++) {
      opts.signal?.throwIfAborted();
      attempts++;
      try {
        await run();
        return { ok: true, attempts, path };
      } catch (err) {
        opts.signal?.throwIfAborted();
        const msg = err instanceof Error ? err.message : String(err);
        error = dialer ? `${path}: ${msg}` : msg;
      }
    }
  }
  return { ok: false, attempts, error, path: paths[paths.length - 1][0] };
}

/**
 * Probes many targets with at most `concurrency` in flight; `onResult` sees each outcome as
 * it completes.
 */
export async function probeMany(
  targets: ProbeTarget[],
  opts: ProbeOptions & { concurrency: number },
  onResult: (target: ProbeTarget, outcome: ProbeOutcome, ms: number) => void,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < targets.length && !opts.signal?.aborted) {
      const t = targets[next++];
      const t0 = performance.now();
      const out = await probe(t, opts);
      onResult(t, out, performance.now() - t0);
    }
  };
  // Wait for every worker, even after an abort, so no connection outlives the call.
  const results = await Promise.allSettled(
    Array.from({ length: Math.min(opts.concurrency, targets.length) }, worker),
  );
  opts.signal?.throwIfAborted();
  for (const r of results) if (r.status === "rejected") throw r.reason;
}
