/**
 * The TCP relay: one read/write loop per direction over a reused buffer (about twice as fast
 * as `pipeTo` here). A write is awaited before the next read, so a slow reader stalls its
 * writer instead of growing a queue (backpressure). Half-close is passed on; the relay ends
 * when both directions ended, on an error, on the idle timeout or on the abort signal.
 * With `buffers`, a direction starts on a small pooled buffer and takes a large one once a
 * read fills the small one; both go back to their pools when the relay ends.
 */

import type { RelayBuffers } from "./buffer_pool.ts";
import type { Duplex } from "./duplex.ts";

export interface RelayOptions {
  /** Buffer per direction when `buffers` is absent. */
  bufferBytes: number;
  /** Pooled buffers (the proxy's); without them each direction allocates `bufferBytes`. */
  buffers?: RelayBuffers;
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

  const pools = o.buffers;
  const pump = async (src: Duplex, dst: Duplex, dir: "tx" | "rx") => {
    let buf = pools ? pools.small.get() : new Uint8Array(o.bufferBytes);
    let small = !!pools;
    try {
      for (;;) {
        const n = await src.read(buf);
        if (n === null) break;
        last = now();
        await dst.write(n === buf.length ? buf : buf.subarray(0, n));
        o.onBytes?.(dir, n);
        if (small && n === buf.length) {
          pools!.small.put(buf);
          buf = pools!.large.get();
          small = false;
        }
      }
    } finally {
      if (pools) (small ? pools.small : pools.large).put(buf);
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
