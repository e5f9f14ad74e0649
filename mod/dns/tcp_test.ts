/** DNS over TCP: idle connections are closed, the connection bound holds, oversized input is cut. */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { DnsServer } from "./server.ts";
import { encodeQuery, NS, readTcpAnswers, sampleCluster } from "./test_support.ts";

async function withServer(fn: (s: DnsServer) => Promise<void>): Promise<void> {
  const { catalog } = sampleCluster();
  const s = new DnsServer({ logger: nullLogger(), metrics: new Registry(), catalog }, {
    listenAddresses: ["127.0.0.1"],
    listenPort: 0,
    clusterDomain: "cluster.local",
    ttlMs: 30_000,
    upstreamServers: [],
    tcpIdleTimeoutMs: 150,
    maxTcpConnections: 2,
    udpPath: "portable",
  });
  await s.start(new AbortController().signal);
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

/** Closes a connection the server may already have closed. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  }
}

/** Resolves with the time until the peer closed, or rejects after `deadlineMs`. */
async function closedWithin(conn: Deno.Conn, deadlineMs: number): Promise<number> {
  const t0 = performance.now();
  const buf = new Uint8Array(4096);
  const timer = setTimeout(() => conn.close(), deadlineMs);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return performance.now() - t0;
    }
  } catch (err) {
    if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
      throw new Error(`connection still open after ${deadlineMs} ms`);
    }
    if (err instanceof Deno.errors.ConnectionReset) return performance.now() - t0;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("an idle TCP connection is closed after tcpIdleTimeoutMs, a busy one is kept", async () => {
  await withServer(async (s) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    try {
      await conn.write(encodeQuery({ id: 1, name: `hl.${NS}`, type: "A", tcp: true }));
      assertEquals((await readTcpAnswers(conn, 1))[0].id, 1);
      const ms = await closedWithin(conn, 2000);
      assert(ms >= 100, `closed too early: ${ms} ms`);
    } finally {
      closeQuietly(conn);
    }
  });
});

Deno.test("connections beyond maxTcpConnections are closed at once; the others keep working", async () => {
  await withServer(async (s) => {
    const conns = [
      await Deno.connect({ hostname: "127.0.0.1", port: s.port }),
      await Deno.connect({ hostname: "127.0.0.1", port: s.port }),
    ];
    // Make sure both are accepted before the third arrives.
    for (const [i, c] of conns.entries()) {
      await c.write(encodeQuery({ id: 10 + i, name: `hl.${NS}`, type: "A", tcp: true }));
      await readTcpAnswers(c, 1);
    }
    const third = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    try {
      await closedWithin(third, 2000);
      await conns[0].write(encodeQuery({ id: 20, name: `hl.${NS}`, type: "A", tcp: true }));
      assertEquals((await readTcpAnswers(conns[0], 1))[0].id, 20);
    } finally {
      for (const c of [...conns, third]) closeQuietly(c);
    }
  });
});

Deno.test("a TCP frame too short to be a DNS message closes the connection", async () => {
  await withServer(async (s) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    try {
      await conn.write(new Uint8Array([0, 3, 1, 2, 3]));
      await closedWithin(conn, 2000);
    } finally {
      closeQuietly(conn);
    }
  });
});
