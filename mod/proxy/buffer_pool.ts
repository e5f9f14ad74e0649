/**
 * Relay buffers, reused across connections. A relay direction starts on a small buffer and
 * moves to a large one when a read fills the small one (bulk transfer), so request/response
 * traffic does not hold (or zero, or garbage-collect) 64–256 KiB per connection. The free
 * lists are bounded; buffers beyond the bound are left to the garbage collector.
 */

export class BufferPool {
  readonly #free: Uint8Array[] = [];

  constructor(readonly size: number, readonly maxFree: number) {}

  get(): Uint8Array {
    return this.#free.pop() ?? new Uint8Array(this.size);
  }

  /** Returns a buffer from `get()`; it must no longer be in use (no pending read or write). */
  put(buf: Uint8Array): void {
    if (buf.byteLength === this.size && this.#free.length < this.maxFree) this.#free.push(buf);
  }

  get freeCount(): number {
    return this.#free.length;
  }
}

/** The two pools a relay uses: `small` to start with, `large` once a read fills `small`. */
export interface RelayBuffers {
  small: BufferPool;
  large: BufferPool;
}

export const SMALL_RELAY_BUFFER = 16384;

/** Pools sized for `largeBytes` buffers, keeping at most `maxFreeBytes` idle in each. */
export function relayBuffers(largeBytes: number, maxFreeBytes = 8 * 1048576): RelayBuffers {
  return {
    small: new BufferPool(
      SMALL_RELAY_BUFFER,
      Math.max(1, Math.floor(maxFreeBytes / SMALL_RELAY_BUFFER)),
    ),
    large: new BufferPool(largeBytes, Math.max(1, Math.floor(maxFreeBytes / largeBytes))),
  };
}
