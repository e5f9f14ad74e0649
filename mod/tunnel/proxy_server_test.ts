import { deepStrictEqual, equal, ok } from "node:assert/strict";
import type { Stream } from "@libp2p/interface";
import { nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { tunnelMetrics } from "./metrics.ts";
import { ProxyServer } from "./proxy_server.ts";
import { encodeReply, encodeRequest } from "./wire.ts";

/** Just enough of a libp2p Stream for the server: inbound bytes are pushed by the test. */
class FakeStream extends EventTarget {
  status = "open";
  readableEnded = false;
  writableNeedsDrain = false;
  sent: Uint8Array[] = [];
  abortedWith?: Error;
  send(d: Uint8Array): boolean {
    this.sent.push(d);
    return true;
  }
  close(): Promise<void> {
    if (this.status === "open") this.status = "closed";
    return Promise.resolve();
  }
  abort(err: Error): void {
    this.abortedWith = err;
    this.status = "aborted";
    this.dispatchEvent(Object.assign(new Event("close"), { error: err }));
  }
  pause() {}
  resume() {}
  onDrain(): Promise<void> {
    return Promise.resolve();
  }
  push(bytes: Uint8Array): void {
    this.dispatchEvent(Object.assign(new Event("message"), { data: bytes }));
  }
}

function server(
  allowed: (ip: string, port: number) => boolean = () => false,
  headerTimeoutMs = 200,
) {
  const registry = new Registry();
  const metrics = tunnelMetrics(registry);
  const shutdown = new AbortController();
  const s = new ProxyServer({
    localTargets: { allowed },
    logger: nullLogger(),
    metrics,
    headerTimeoutMs,
    udpIdleTimeoutMs: 1000,
    shutdown: shutdown.signal,
  });
  return { s, metrics };
}

const rejects = (m: ReturnType<typeof tunnelMetrics>, reason: string) => m.rejects.get({ reason });

Deno.test("ProxyServer resets streams with a bad version, an oversized header or garbage", async () => {
  const { s, metrics } = server();
  for (
    const bytes of [
      Uint8Array.from([7, 0, 10]),
      Uint8Array.from([1, 0xff, 0xff]),
      Uint8Array.from([1, 0, 8, 9, 9, 9, 9, 9, 9, 9, 9]),
    ]
  ) {
    const st = new FakeStream();
    const done = s.serve(st as unknown as Stream, "peer");
    st.push(bytes);
    await done;
    ok(st.abortedWith, "stream reset");
    deepStrictEqual(st.sent, [], "nothing answered");
  }
  equal(rejects(metrics, "protocol"), 3);
});

Deno.test("ProxyServer resets a silent peer after the header timeout", async () => {
  const { s, metrics } = server(() => false, 50);
  const st = new FakeStream();
  const t0 = performance.now();
  st.push(Uint8Array.from([1, 0])); // two bytes, then silence
  await s.serve(st as unknown as Stream, "peer");
  ok(performance.now() - t0 >= 45);
  ok(st.abortedWith);
  equal(rejects(metrics, "timeout"), 1);
});

Deno.test("ProxyServer answers forbidden for a target LocalTargets does not allow, and dials nothing", async () => {
  const asked: string[] = [];
  const { s, metrics } = server((ip: string, port: number) => {
    asked.push(`${ip}:${port}`);
    return false;
  });
  const st = new FakeStream();
  const done = s.serve(st as unknown as Stream, "peer");
  st.push(encodeRequest({ protocol: "tcp", ip: "10.1.2.3", port: 22, sourceNode: "a" }));
  await done;
  deepStrictEqual(asked, ["10.1.2.3:22"]);
  deepStrictEqual(st.sent, [encodeReply("forbidden")]);
  equal(rejects(metrics, "forbidden"), 1);
});
