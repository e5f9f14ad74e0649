import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { relayBuffers, SMALL_RELAY_BUFFER } from "./buffer_pool.ts";
import type { Duplex } from "./duplex.ts";
import { relay } from "./relay.ts";

/** An in-memory duplex: reads hand out `chunks` (then end), writes are recorded. */
class FakeDuplex implements Duplex {
  written: number[] = [];
  closedWrite = false;
  closed = false;
  readBuffers = new Set<ArrayBufferLike>();
  constructor(private chunks: number[]) {}
  read(buf: Uint8Array): Promise<number | null> {
    this.readBuffers.add(buf.buffer);
    const n = this.chunks.shift();
    if (n === undefined) return Promise.resolve(null);
    const k = Math.min(n, buf.length);
    buf.fill(7, 0, k);
    return Promise.resolve(k);
  }
  write(data: Uint8Array): Promise<void> {
    this.written.push(data.length);
    return Promise.resolve();
  }
  closeWrite(): Promise<void> {
    this.closedWrite = true;
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
  }
}

Deno.test("relay() starts on a small pooled buffer, moves to a large one on a full read, and returns both", async () => {
  const buffers = relayBuffers(262144);
  const client = new FakeDuplex([100, SMALL_RELAY_BUFFER, 200_000, 300_000]);
  const upstream = new FakeDuplex([50]);
  const seen: Record<string, number> = { tx: 0, rx: 0 };
  const end = await relay(client, upstream, {
    bufferBytes: 65536,
    buffers,
    idleTimeoutMs: 0,
    onBytes: (d, n) => seen[d] += n,
  });
  assertEquals(end, "done");
  // The full 16 KiB read switched to the 256 KiB buffer: 300,000 bytes take two writes.
  assertEquals(upstream.written, [100, SMALL_RELAY_BUFFER, 200_000, 262144]);
  assertEquals(client.written, [50]);
  assertEquals(seen, { tx: 100 + SMALL_RELAY_BUFFER + 200_000 + 262144, rx: 50 });
  assertEquals(client.closedWrite && upstream.closedWrite, true);
  assertEquals(client.closed && upstream.closed, true);
  // Both directions started on a small buffer; client→upstream then took the large one.
  assertEquals(buffers.small.freeCount, 2);
  assertEquals(buffers.large.freeCount, 1);
  // The next relay reuses them.
  const again = new FakeDuplex([SMALL_RELAY_BUFFER, 10]);
  await relay(again, new FakeDuplex([]), { bufferBytes: 65536, buffers, idleTimeoutMs: 0 });
  // Reused: no buffer more than before.
  assertEquals(buffers.small.freeCount, 2);
  assertEquals(buffers.large.freeCount, 1);
  assertEquals(again.readBuffers.size, 2);
});

Deno.test("BufferPool keeps at most maxFree idle buffers and only of its size", () => {
  const { small } = relayBuffers(65536, SMALL_RELAY_BUFFER * 2);
  const a = small.get();
  const b = small.get();
  const c = small.get();
  small.put(a);
  small.put(b);
  small.put(c);
  small.put(new Uint8Array(10));
  assertEquals(small.freeCount, 2);
  strictEqual(small.get(), b);
});
