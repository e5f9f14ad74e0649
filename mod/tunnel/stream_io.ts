/**
 * Reading and writing libp2p streams with bounded buffers: a pull-based reader that pauses
 * the stream above a high-water mark (yamux then stops granting window to the sender), and
 * a writer that waits for drain. No data is copied except to merge pieces of a short read.
 */

import type { Stream, StreamCloseEvent, StreamMessageEvent } from "@libp2p/interface";
import { WireError } from "./errors.ts";

type Chunkish = StreamMessageEvent["data"];

/** An AbortSignal that fires after `ms` or with `parent`; call `clear()` when done. */
export function deadline(ms: number, parent?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const ctl = new AbortController();
  const timer = setTimeout(
    () => ctl.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")),
    ms,
  );
  const onParent = () => ctl.abort(parent?.reason);
  if (parent?.aborted) ctl.abort(parent.reason);
  else parent?.addEventListener("abort", onParent, { once: true });
  return {
    signal: ctl.signal,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParent);
    },
  };
}

/** Pulls data from a libp2p stream; ends with null on a clean end, throws on reset. */
export class StreamReader {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #paused = false;
  #resuming = false;

  constructor(
    readonly stream: Stream,
    readonly highWaterMark = 1 << 20,
  ) {
    stream.addEventListener("message", this.#onMessage);
    stream.addEventListener("end", this.#onEnd);
    stream.addEventListener("close", this.#onClose);
    if (stream.readableEnded) this.#ended = true;
    if (stream.status === "reset" || stream.status === "aborted") {
      this.#error = new WireError("stream reset");
    } else if (stream.status === "closed") this.#ended = true;
  }

  /** Bytes buffered and not yet read. */
  get buffered(): number {
    return this.#buffered;
  }

  #onMessage = (evt: StreamMessageEvent) => {
    const d: Chunkish = evt.data;
    if (d instanceof Uint8Array) {
      if (d.byteLength > 0) this.#chunks.push(d);
    } else {
      for (const c of d) if (c.byteLength > 0) this.#chunks.push(c);
    }
    this.#buffered += d.byteLength;
    // Not from inside our own resume(): libp2p re-opens the yamux window after dispatching
    // what it held back, which would undo the pause and let the read buffer grow until
    // libp2p resets the stream (StreamBufferError). `#took` pauses after resume() instead.
    if (!this.#resuming) this.#pauseIfFull();
    this.#notify();
  };

  #pauseIfFull(): void {
    if (this.#paused || this.#buffered <= this.highWaterMark) return;
    if (this.stream.readStatus !== "readable") return;
    this.#paused = true;
    this.stream.pause();
  }

  #onEnd = () => {
    // libp2p dispatches "end" on abort and reset too, before the close event with the error:
    // that is no clean end (the error must reach the reader, not a short read).
    if (this.stream.status === "aborted" || this.stream.status === "reset") return;
    this.#ended = true;
    this.#notify();
  };

  #onClose = (evt: StreamCloseEvent) => {
    if (evt.error) {
      if (!this.#ended) this.#error = evt.error;
      this.#ended = true;
    } else if (this.stream.readStatus !== "paused") {
      // Paused (both sides closed while we held back), libp2p still buffers data for us: it
      // is delivered on resume, and "end" follows.
      this.#ended = true;
    }
    this.#notify();
  };

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #wait(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#wake = undefined;
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#wake = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }

  #took(n: number): void {
    this.#buffered -= n;
    if (this.#paused && this.#buffered <= this.highWaterMark / 2) {
      this.#paused = false;
      // Not only while "open": a stream both sides closed may still hold data for us.
      const s = this.stream;
      if (s.readStatus === "paused" && s.status !== "aborted" && s.status !== "reset") {
        this.#resuming = true;
        try {
          s.resume();
        } finally {
          this.#resuming = false;
        }
        this.#pauseIfFull();
      }
    }
  }

  /** The next chunk as received, or null once the remote closed its write side. */
  async read(signal?: AbortSignal): Promise<Uint8Array | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await this.#wait(signal);
    }
    const c = this.#chunks.shift()!;
    this.#took(c.byteLength);
    return c;
  }

  /** Exactly `n` bytes (a view when one chunk holds them); WireError if the stream ends first. */
  async readExactly(n: number, signal?: AbortSignal): Promise<Uint8Array> {
    while (this.#buffered < n) {
      if (this.#error) throw this.#error;
      if (this.#ended) throw new WireError(`stream ended after ${this.#buffered} of ${n} bytes`);
      await this.#wait(signal);
    }
    const first = this.#chunks[0];
    if (first.byteLength >= n) {
      if (first.byteLength === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#took(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.#chunks[0];
      const take = Math.min(c.byteLength, n - o);
      out.set(c.subarray(0, take), o);
      o += take;
      if (take === c.byteLength) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#took(n);
    return out;
  }

  /** Stops listening; buffered data is dropped. */
  detach(): void {
    this.stream.removeEventListener("message", this.#onMessage);
    this.stream.removeEventListener("end", this.#onEnd);
    this.stream.removeEventListener("close", this.#onClose);
    this.#chunks = [];
    this.#buffered = 0;
    this.#ended = true;
    this.#notify();
  }
}

/** Sends `data`, waiting for drain when the stream's buffer is full. */
export async function sendAll(
  stream: Stream,
  data: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  if (stream.writableNeedsDrain) await drained(stream, signal);
  if (!stream.send(data)) await drained(stream, signal);
}

/**
 * Waits until the stream can take more data (or closed). Not `stream.onDrain()`: in
 * @libp2p/utils 7.4.1 its promise is created once and never reset, so after the first drain
 * it resolves at once and a writer never waits for a slow receiver (a stream queued 4 GB in
 * 2 s in bench/tunnel.ts).
 */
function drained(stream: Stream, signal?: AbortSignal): Promise<void> {
  if (!stream.writableNeedsDrain) return Promise.resolve();
  signal?.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      stream.removeEventListener("drain", done);
      stream.removeEventListener("close", done);
      signal?.removeEventListener("abort", onAbort);
    };
    const done = () => {
      cleanup();
      resolve();
    };
    const onAbort = () => {
      cleanup();
      reject(signal!.reason);
    };
    stream.addEventListener("drain", done);
    stream.addEventListener("close", done);
    signal?.addEventListener("abort", onAbort);
  });
}

/**
 * Closes a stream for good: flush and half-close our side, then reset if the remote has
 * not finished within `graceMs` (so the remote side never waits on a peer that left).
 */
export async function closeStream(stream: Stream, graceMs = 2000): Promise<void> {
  if (stream.status === "closed" || stream.status === "reset" || stream.status === "aborted") {
    return;
  }
  const d = deadline(graceMs);
  try {
    await stream.close({ signal: d.signal });
  } catch {
    // Flushing failed or timed out: the reset below is the answer.
  } finally {
    d.clear();
  }
  if ((stream.status as string) !== "closed") stream.abort(new WireError("closed locally"));
}
