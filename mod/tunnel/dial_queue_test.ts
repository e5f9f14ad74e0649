/**
 * A dial to a peer that hangs (a bootstrap or DHT dial to an address that accepts TCP and
 * never answers) must not hold back a relayed stream to the same peer: libp2p's dial queue
 * would merge them into one job.
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { readN, startAgent, tcpEcho, waitFor } from "./test_util.ts";

const NODES = new Set(["r1", "a", "b"]);
const enc = new TextEncoder();

/** Accepts TCP connections and never writes: a libp2p handshake on it hangs. */
function blackhole(hostname: string) {
  const listener = Deno.listen({ hostname, port: 0 });
  const conns = new Set<Deno.Conn>();
  let hanging = 0;
  const accepting = (async () => {
    for await (const c of listener) {
      conns.add(c);
      hanging++;
      // Counts the connection as hanging until the dialer gives up and closes it.
      (async () => {
        const buf = new Uint8Array(1024);
        try {
          while ((await c.read(buf)) !== null) { /* discard */ }
        } catch { /* reset by the dialer */ }
        hanging--;
        conns.delete(c);
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    hanging: () => hanging,
    async close() {
      listener.close();
      for (const c of conns) c.close();
      await accepting;
    },
  };
}

Deno.test("a relayed stream is not held behind a hanging dial to the same peer", async () => {
  const echo = tcpEcho();
  const bh = blackhole("127.0.4.9");
  const deny = (ip: string) => ({
    denyDialAddress: (ma: string) => ma.startsWith(`/ip4/${ip}/`),
  });
  const r1 = await startAgent({
    name: "r1",
    ip: "127.0.4.1",
    known: NODES,
    relayNodes: [{ nodeName: "r1", advertiseAddress: [] }],
  });
  const relayNodes = [{ nodeName: "r1", advertiseAddress: [r1.addr] }];
  const b = await startAgent({
    name: "b",
    ip: "127.0.4.3",
    known: NODES,
    relayNodes,
    hooks: deny("127.0.4.2"),
    allow: (ip, port) => ip === "127.0.0.1" && port === echo.port,
  });
  // a's bootstrap list names b at the blackhole: that dial hangs for its whole 5 s deadline.
  const a = await startAgent({
    name: "a",
    ip: "127.0.4.2",
    known: NODES,
    relayNodes,
    bootstrap: [`/ip4/127.0.4.9/tcp/${bh.port}/p2p/${b.tunnel.peerId}`],
    hooks: deny("127.0.4.3"),
  });
  try {
    await waitFor(
      () => [a, b].every((x) => x.tunnel.snapshot().relays.some((r) => r.reserved)),
      8000,
      "reservations on r1",
    );
    await waitFor(() => a.tunnel.peerIdOf("b") !== undefined, 5000, "a knows b's claim");
    await waitFor(() => bh.hanging() > 0, 5000, "a's bootstrap dial to b hanging");
    // 2 s is well under the hanging dial's 5 s: joining it would time out.
    const s = await a.tunnel.dialStream(
      { node: "b", ip: "127.0.0.1", port: echo.port, protocol: "tcp" },
      { timeoutMs: 2000 },
    );
    assertEquals(bh.hanging() > 0, true, "the bootstrap dial was still hanging");
    assertEquals(s.path, "tunnel-relay");
    const w = s.writable.getWriter();
    const r = s.readable.getReader();
    await w.write(enc.encode("past the queue"));
    assertEquals(new TextDecoder().decode(await readN(r, 14)), "past the queue");
    await w.close();
    s.close();
  } finally {
    await a.stop();
    await b.stop();
    await r1.stop();
    await bh.close();
    await echo.close();
  }
});
