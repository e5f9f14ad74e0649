import { equal, ok, rejects } from "node:assert/strict";
import { streamPair } from "@libp2p/utils";
import { StreamReader } from "./stream_io.ts";
import { waitFor } from "./test_util.ts";

/** Reads until the stream fails or ends; returns the bytes read and how it ended. */
async function drain(r: StreamReader): Promise<{ bytes: number; error?: Error }> {
  let bytes = 0;
  try {
    for (;;) {
      const c = await r.read();
      if (c === null) return { bytes };
      bytes += c.byteLength;
    }
  } catch (err) {
    return { bytes, error: err as Error };
  }
}

Deno.test("StreamReader: a clean end reads every byte and then null", async () => {
  const [a, b] = await streamPair();
  const r = new StreamReader(b);
  a.send(new Uint8Array(1000));
  await a.close();
  const out = await drain(r);
  equal(out.error, undefined);
  equal(out.bytes, 1000);
  r.detach();
  await b.close();
});

// libp2p dispatches "end" before the close event carrying the error: a lost connection (the
// connection monitor aborting it) must not look like the sender finished.
Deno.test("StreamReader: a local abort (connection lost) is an error, not a clean end", async () => {
  const [a, b] = await streamPair();
  const r = new StreamReader(b);
  a.send(new Uint8Array(1000));
  const first = await r.read();
  ok(first && first.byteLength > 0);
  const pending = r.read();
  b.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
  await rejects(pending, (e: Error) => e.name === "TimeoutError");
  await rejects(r.read(), (e: Error) => e.name === "TimeoutError");
  r.detach();
});

Deno.test("StreamReader: a remote reset is an error, not a clean end", async () => {
  const [a, b] = await streamPair();
  const r = new StreamReader(b);
  a.send(new Uint8Array(1000));
  const first = await r.read();
  ok(first && first.byteLength > 0);
  const pending = drain(r);
  a.abort(new Error("gone"));
  const out = await pending;
  ok(out.error, `the reader ended cleanly after ${out.bytes} more bytes`);
  r.detach();
});

// Both sides closed while the reader was paused above its high-water mark: libp2p still holds
// the rest, and the reader must resume to get it (it ended short, without an error, before).
Deno.test("StreamReader: data held back while paused survives both sides closing", async () => {
  const [a, b] = await streamPair();
  const r = new StreamReader(b, 4096);
  const total = 64 * 1024;
  for (let o = 0; o < total; o += 1024) a.send(new Uint8Array(1024));
  await b.close();
  await a.close();
  await waitFor(() => b.status === "closed", 2000, "both sides closed");
  equal(b.readStatus, "paused", "the reader held data back");
  const out = await drain(r);
  equal(out.error, undefined);
  equal(out.bytes, total);
  r.detach();
});
