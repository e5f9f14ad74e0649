/**
 * A long transfer over a private network: 192 MiB each way through a PSK-protected tunnel
 * stream. With @libp2p/pnet's cipher this died after some tens of MB (WebAssembly memory).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startAgent, tcpEcho, waitFor } from "./test_util.ts";

const NODES = new Set(["p1", "p2"]);
const STEP = 4099;

/** Folds the bytes at absolute positions that are multiples of STEP into a checksum. */
function sample(buf: Uint8Array, offset: number, sum: number): number {
  for (let p = Math.ceil(offset / STEP) * STEP; p < offset + buf.length; p += STEP) {
    sum = (sum * 31 + buf[p - offset] + p) % 1_000_000_007;
  }
  return sum;
}

Deno.test("a PSK-protected stream carries 192 MiB each way intact", async () => {
  const psk = new TextEncoder().encode("test-psk-" + crypto.randomUUID() + crypto.randomUUID());
  const echo = tcpEcho();
  const b = await startAgent({
    name: "p2",
    ip: "127.0.9.2",
    known: NODES,
    psk,
    allow: (ip, port) => ip === "127.0.0.1" && port === echo.port,
  });
  const a = await startAgent({
    name: "p1",
    ip: "127.0.9.1",
    known: NODES,
    psk,
    bootstrap: [b.tunnel.multiaddrs()[0]],
  });
  try {
    await waitFor(() => !!a.tunnel.peerIdOf("p2"), 8000, "p1 to learn p2");
    const s = await a.tunnel.dialStream({
      node: "p2",
      ip: "127.0.0.1",
      port: echo.port,
      protocol: "tcp",
    });
    const total = 192 * 1048576;
    const chunk = new Uint8Array(262144).map((_, i) => (i * 7 + 3) & 255);
    const w = s.writable.getWriter();
    const reading = (async () => {
      const r = s.readable.getReader();
      let got = 0;
      let sum = 0;
      for (;;) {
        const { value, done } = await r.read();
        if (done) break;
        sum = sample(value, got, sum);
        got += value.length;
      }
      return { got, sum };
    })();
    let expectSum = 0;
    for (let off = 0; off < total; off += chunk.length) {
      expectSum = sample(chunk, off, expectSum);
      await w.write(chunk);
    }
    await w.close();
    const { got, sum } = await reading;
    assertEquals(got, total);
    assertEquals(sum, expectSum, "checksum of the echoed bytes");
    s.close();
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await echo.close();
  }
});
