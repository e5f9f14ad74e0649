/**
 * The TCP relay: one read/write loop per direction over a reused buffer (about twice as fast
 * as `pipeTo` here). A write is awaited before the next read, so a slow reader stalls its
 * writer instead of growing a queue (backpressure). Half-close is passed on; the relay ends
 * when both directions ended, on an error, on the idle timeout or on the abort signal.
 */

import type { Duplex } from "./duplex.ts";

export interface RelayOptions {
  bufferBytes: number;
  idleTimeoutMs: number;
  signal?: AbortSignal;
  /** Called after each chunk forwarded client → upstream ("tx") and back ("rx"). */
  onBytes?(direction: "tx" | "rx", n: number): void;
  now?: () => number;
}

export type RelayEnd = "done" | "idle" | "aborted" | "error";

export async function relay(client: Duplex, upstream: Duplex, o: RelayOptions): Promise<RelayEnd> {
  const now = o.now ?? (() => performance.now());
  let last = now();
  let end: RelayEnd | undefined;
  const finish = (why: RelayEnd) => {
    end ??= why;
    client.close();
    upstream.close();
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (ms: number) => {
    timer = setTimeout(() => {
      const idle = now() - last;
      if (idle >= o.idleTimeoutMs) finish("idle");
      else arm(o.idleTimeoutMs - idle);
    }, ms);
  };
  if (o.idleTimeoutMs > 0) arm(o.idleTimeoutMs);
  const onAbort = () => finish("aborted");
  o.signal?.addEventListener("abort", onAbort, { once: true });
  if (o.signal?.aborted) onAbort();

  const pump = async (src: Duplex, dst: Duplex, dir: "tx" | "rx") => {
    const buf = new Uint8Array(o.bufferBytes);
    for (;;) {
      const n = await src.read(buf);
      if (n === null) break;
      last = now();
      await dst.write(buf.subarray(0, n));
      o.onBytes?.(dir, n);
    }
    await dst.closeWrite();
  };
  const guard = (p: Promise<void>) =>
    p.catch((err) => {
      if (end === undefined && !isConnectionError(err)) throw err;
      finish("error");
    });
  try {
    await Promise.all([
      guard(pump(client, upstream, "tx")),
      guard(pump(upstream, client, "rx")),
    ]);
    finish("done");
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener("abort", onAbort);
  }
  return end!;
}

/** Errors a peer causes by resetting or closing; anything else is a bug and propagates. */
export function isConnectionError(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.UnexpectedEof ||
    err instanceof Deno.errors.TimedOut ||
    (err instanceof Error && (err.name === "AbortError" || err.name === "DialError")) ||
    err instanceof TypeError; // WHATWG streams: "stream closed/errored"
}
