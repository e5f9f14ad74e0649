/**
 * Response buffers carved from 64 KiB slabs: a view costs far less than a fresh typed array
 * (which allocates its own backing store). A view is never reused; a slab is collected once
 * every response in it has been sent.
 */

export type Alloc = (n: number) => Uint8Array;

export const plainAlloc: Alloc = (n) => new Uint8Array(n);

export class ResponseArena {
  #slab = new ArrayBuffer(0);
  #off = 0;

  constructor(private readonly slabSize = 65536) {}

  readonly alloc: Alloc = (n) => {
    if (n > this.slabSize / 4) return new Uint8Array(n);
    if (this.#off + n > this.#slab.byteLength) {
      this.#slab = new ArrayBuffer(this.slabSize);
      this.#off = 0;
    }
    const view = new Uint8Array(this.#slab, this.#off, n);
    // Keep views 8-byte aligned: cheap, and friendly to DataView users.
    this.#off += (n + 7) & ~7;
    return view;
  };
}
