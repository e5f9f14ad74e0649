/** The service proxy over real sockets: TCP relay, half-close, failover, paths, metrics. */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { memoryLogger } from "../mod/log/mod.ts";
import { putDestinationRule, putEndpoints, putService } from "./support/cluster_fixture.ts";
import { httpNamed, run, tcpEcho } from "./support/backends.ts";
import { waitFor } from "./support/wait.ts";
import { readAll, startProxy } from "./support/proxy_harness.ts";

const PORTS = [{ name: "tcp", port: 80, protocol: "TCP" as const }];
const HTTP_PORTS = [{ name: "http", port: 80, protocol: "TCP" as const }];

async function get(
  port: number,
  path = "/",
  headers: Record<string, string> = {},
): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: { connection: "close", ...headers },
  });
  return await r.text();
}

Deno.test("proxy relays a 4 MiB TCP echo and counts bytes both ways", async () => {
  const echo = tcpEcho();
  await using h = await startProxy();
  try {
    putService(h.store, {
      name: "echo",
      clusterIP: "198.19.0.1",
      ports: PORTS,
      endpoints: [{ ip: "127.0.0.1", port: echo.port, node: "n1" }],
    });
    const port = await h.listener("echo", 80);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const data = crypto.getRandomValues(new Uint8Array(65536));
    const reading = readAll(conn);
    for (let i = 0; i < 64; i++) {
      let off = 0;
      while (off < data.length) off += await conn.write(data.subarray(off));
    }
    await conn.closeWrite();
    const got = await reading;
    conn.close();
    assertEquals(got.length, 64 * 65536);
    assertEquals(got.subarray(0, 65536), data);
    const labels = { service: "default/echo", port: "80/tcp" };
    assertEquals(
      h.metrics.counter("edgemesh_proxy_bytes_total", "", []).get({ ...labels, direction: "tx" }),
      64 * 65536,
    );
    assertEquals(
      h.metrics.counter("edgemesh_proxy_endpoint_picks_total", "", []).get({
        ...labels,
        endpoint: `127.0.0.1:${echo.port}`,
        path: "local",
      }),
      1,
    );
  } finally {
    await echo.close();
  }
});

Deno.test("proxy honours half-close: the reply still arrives after the client's FIN", async () => {
  const echo = tcpEcho();
  await using h = await startProxy();
  try {
    putService(h.store, {
      name: "echo",
      clusterIP: "198.19.0.1",
      ports: PORTS,
      endpoints: [{ ip: "127.0.0.1", port: echo.port, node: "n1" }],
    });
    const port = await h.listener("echo", 80);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("hello, "));
    await conn.write(new TextEncoder().encode("half-closed world"));
    await conn.closeWrite();
    const got = new TextDecoder().decode(await readAll(conn));
    conn.close();
    assertEquals(got, "hello, half-closed world");
  } finally {
    await echo.close();
  }
});

Deno.test("proxy skips a killed backend on the next connection and marks it down", async () => {
  // Unique names: in a parallel run another test may bind the killed backend's port again.
  const tag = crypto.randomUUID().slice(0, 8);
  const a = httpNamed(`a-${tag}`);
  const b = httpNamed(`b-${tag}`);
  await using h = await startProxy();
  try {
    putService(h.store, {
      name: "web",
      clusterIP: "198.19.0.2",
      ports: HTTP_PORTS,
      endpoints: [
        { ip: "127.0.0.1", port: a.port, node: "n1" },
        { ip: "127.0.0.1", port: b.port, node: "n1" },
      ],
    });
    const port = await h.listener("web", 80);
    const first = new Set([await get(port), await get(port)]);
    assertEquals(first, new Set([`a-${tag}`, `b-${tag}`]));
    await a.close();
    const after: string[] = [];
    for (let i = 0; i < 6; i++) after.push(await get(port));
    const portReused = await Deno.connect({ hostname: "127.0.0.1", port: a.port }).then(
      (c) => (c.close(), true),
      () => false,
    );
    if (portReused) return; // someone else listens there now: nothing left to check
    assertEquals(after, Array(6).fill(`b-${tag}`));
    const errors = h.metrics.counter("edgemesh_proxy_connect_errors_total", "", []);
    assertEquals(errors.get({ service: "default/web", port: "80/tcp", reason: "refused" }), 1);
    const row = h.proxy.services().find((s) => s.name === "web")!;
    assert(row.endpoints.find((e) => e.port === a.port)!.down);
  } finally {
    await a.close().catch(() => undefined);
    await b.close();
  }
});

Deno.test("proxy closes a connection at once when the service has no endpoints", async () => {
  await using h = await startProxy();
  putService(h.store, { name: "empty", clusterIP: "198.19.0.3", ports: PORTS, endpoints: [] });
  const port = await h.listener("empty", 80);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const t0 = performance.now();
  const got = await readAll(conn).catch((err) => {
    if (err instanceof Deno.errors.ConnectionReset) return new Uint8Array(0);
    throw err;
  });
  conn.close();
  assertEquals(got.length, 0);
  assert(performance.now() - t0 < 1000);
});

Deno.test("proxy reaches endpoints of other nodes through the Dialer, or directly with lanDirect", async () => {
  const echo = tcpEcho();
  try {
    for (const [lanDirect, path] of [[false, "tunnel-relay"], [true, "lan"]] as const) {
      await using h = await startProxy({ lanDirect });
      putService(h.store, {
        name: "echo",
        clusterIP: "198.19.0.4",
        ports: PORTS,
        endpoints: [{ ip: "127.0.0.1", port: echo.port, node: "n2" }],
      });
      const port = await h.listener("echo", 80);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("ping"));
      await conn.closeWrite();
      assertEquals(new TextDecoder().decode(await readAll(conn)), "ping");
      conn.close();
      assertEquals(h.dialer.dials.length, lanDirect ? 0 : 1);
      const picks = h.metrics.counter("edgemesh_proxy_endpoint_picks_total", "", []);
      assertEquals(
        picks.get({
          service: "default/echo",
          port: "80/tcp",
          endpoint: `127.0.0.1:${echo.port}`,
          path,
        }),
        1,
      );
    }
  } finally {
    await echo.close();
  }
});

Deno.test("proxy retries another endpoint when the tunnel cannot reach one", async () => {
  const a = httpNamed("a");
  await using h = await startProxy({ lanDirect: false });
  try {
    putService(h.store, {
      name: "web",
      clusterIP: "198.19.0.5",
      ports: HTTP_PORTS,
      endpoints: [{ ip: "127.0.0.2", port: 9, node: "n3" }, {
        ip: "127.0.0.1",
        port: a.port,
        node: "n2",
      }],
    });
    h.dialer.failures.set("127.0.0.2:9", "unreachable");
    const port = await h.listener("web", 80);
    const got = await Promise.all(Array.from({ length: 4 }, () => get(port)));
    assertEquals(got, ["a", "a", "a", "a"]);
  } finally {
    await a.close();
  }
});

Deno.test("proxy prefers endpoints on this node; internalTrafficPolicy Local uses only them", async () => {
  const local = httpNamed("local");
  const remote = httpNamed("remote");
  await using h = await startProxy({ lanDirect: false });
  try {
    const endpoints = [{ ip: "127.0.0.1", port: local.port, node: "n1" }, {
      ip: "127.0.0.1",
      port: remote.port,
      node: "n2",
    }];
    putService(h.store, { name: "web", clusterIP: "198.19.0.6", ports: HTTP_PORTS, endpoints });
    const port = await h.listener("web", 80);
    assertEquals(
      await Promise.all(Array.from({ length: 4 }, () => get(port))),
      Array(4).fill("local"),
    );
    await local.close();
    // Deno.serve's shutdown may finish closing its listener a moment later; wait until the
    // port refuses, so the failover below is what is tested.
    await waitFor(async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: local.port })).close();
        return false;
      } catch (err) {
        return err instanceof Deno.errors.ConnectionRefused;
      }
    }, "the local backend to refuse connections");
    assertEquals(await get(port), "remote"); // failover beyond the local tier
    putService(h.store, {
      name: "web",
      clusterIP: "198.19.0.6",
      ports: HTTP_PORTS,
      endpoints,
      internalTrafficPolicy: "Local",
    });
    await h.proxy.resync();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    assertEquals((await readAll(conn).catch(() => new Uint8Array(0))).length, 0);
    conn.close();
  } finally {
    await local.close().catch(() => undefined);
    await remote.close();
  }
});

Deno.test("proxy balances ROUND_ROBIN, RANDOM and LEAST_REQUEST from the DestinationRule", async () => {
  const bs = ["a", "b", "c"].map((n) => httpNamed(n));
  await using h = await startProxy();
  try {
    putService(h.store, {
      name: "web",
      clusterIP: "198.19.0.7",
      ports: HTTP_PORTS,
      endpoints: bs.map((b) => ({ ip: "127.0.0.1", port: b.port, node: "n1" })),
    });
    const port = await h.listener("web", 80);
    for (const simple of ["ROUND_ROBIN", "RANDOM", "LEAST_REQUEST"]) {
      putDestinationRule(h.store, "default", "web", {
        host: "web",
        trafficPolicy: { loadBalancer: { simple } },
      });
      await h.proxy.resync();
      const row = h.proxy.services().find((s) => s.name === "web")!;
      assertEquals(row.ports[0].balancer, simple);
      const counts = new Map<string, number>();
      for (let i = 0; i < 60; i++) {
        const n = await get(port);
        counts.set(n, (counts.get(n) ?? 0) + 1);
      }
      assertEquals(counts.size, 3, `${simple}: ${JSON.stringify([...counts])}`);
      if (simple === "ROUND_ROBIN") assertEquals([...counts.values()], [20, 20, 20]);
      for (const c of counts.values()) assert(c >= 8, `${simple}: ${JSON.stringify([...counts])}`);
    }
  } finally {
    for (const b of bs) await b.close();
  }
});

Deno.test("proxy logs and ignores a malformed DestinationRule", async () => {
  const a = httpNamed("a");
  const { logger, lines } = memoryLogger("debug");
  await using h = await startProxy({}, { logger });
  try {
    putDestinationRule(h.store, "default", "web", {
      trafficPolicy: { loadBalancer: { simple: "FASTEST" } },
    });
    putService(h.store, {
      name: "web",
      clusterIP: "198.19.0.8",
      ports: HTTP_PORTS,
      endpoints: [{ ip: "127.0.0.1", port: a.port, node: "n1" }],
    });
    const port = await h.listener("web", 80);
    assertEquals(await get(port), "a");
    assert(lines.some((l) => l.msg === "ignoring malformed DestinationRule"));
    assertEquals(h.proxy.services()[0].ports[0].balancer, "ROUND_ROBIN");
  } finally {
    await a.close();
  }
});

Deno.test("proxy follows endpoint changes without reopening the listener", async () => {
  const a = httpNamed("a");
  const b = httpNamed("b");
  await using h = await startProxy();
  try {
    putService(h.store, {
      name: "web",
      clusterIP: "198.19.0.9",
      ports: HTTP_PORTS,
      endpoints: [{ ip: "127.0.0.1", port: a.port, node: "n1" }],
    });
    const port = await h.listener("web", 80);
    assertEquals(await get(port), "a");
    putEndpoints(h.store, "default", "web", HTTP_PORTS, [{
      ip: "127.0.0.1",
      port: b.port,
      node: "n1",
    }]);
    await h.proxy.resync();
    assertEquals(await h.listener("web", 80), port);
    assertEquals(await get(port), "b");
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("an iperf3 stream (64 MiB) passes through the proxy", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serverPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const server = new Deno.Command("iperf3", {
    args: ["-s", "-B", "127.0.0.1", "-p", String(serverPort)],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  await using h = await startProxy();
  try {
    await waitFor(
      async () => {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: serverPort })).close();
          return true;
        } catch {
          return false;
        }
      },
      "iperf3 server listening",
      5000,
      20,
    );
    putService(h.store, {
      name: "iperf",
      clusterIP: "198.19.0.20",
      ports: PORTS,
      endpoints: [{ ip: "127.0.0.1", port: serverPort, node: "n1" }],
    });
    const port = await h.listener("iperf", 80);
    const out = await run("iperf3", ["-c", "127.0.0.1", "-p", String(port), "-n", "64M", "-J"]);
    const report = JSON.parse(out);
    assertEquals(report.end.sum_sent.bytes, 64 * 1024 * 1024);
    // The receiver stops counting at TEST_END on the control connection, which may overtake
    // the last data in flight on the (separately proxied) data connection.
    assert(
      report.end.sum_received.bytes > 0.8 * 64 * 1024 * 1024,
      JSON.stringify(report.end.sum_received),
    );
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await server.stderr.cancel();
  }
});

Deno.test("proxy closes a TCP connection idle for tcpIdleTimeoutMs", async () => {
  const echo = tcpEcho();
  await using h = await startProxy({ tcpIdleTimeoutMs: 150 });
  try {
    putService(h.store, {
      name: "echo",
      clusterIP: "198.19.0.21",
      ports: PORTS,
      endpoints: [{ ip: "127.0.0.1", port: echo.port, node: "n1" }],
    });
    const port = await h.listener("echo", 80);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const t0 = performance.now();
    await conn.write(new TextEncoder().encode("x"));
    const got = await readAll(conn); // the echo, then EOF when the proxy gives up
    conn.close();
    assertEquals(new TextDecoder().decode(got), "x");
    const took = performance.now() - t0;
    assert(took >= 140 && took < 2000, `closed after ${took} ms`);
    await waitFor(() => echo.accepted() === 1, "backend saw one connection");
  } finally {
    await echo.close();
  }
});

Deno.test("proxy applies backpressure: a backend that never reads stalls the client's writes", async () => {
  const sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = sink.accept(); // accepted, never read
  await using h = await startProxy();
  let backend: Deno.Conn | undefined;
  try {
    putService(h.store, {
      name: "sink",
      clusterIP: "198.19.0.22",
      ports: PORTS,
      endpoints: [{ ip: "127.0.0.1", port: (sink.addr as Deno.NetAddr).port, node: "n1" }],
    });
    const port = await h.listener("sink", 80);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    backend = await accepted;
    const chunk = new Uint8Array(1 << 20);
    let written = 0;
    const writing = (async () => {
      try {
        while (written < 256 << 20) written += await conn.write(chunk);
      } catch (err) {
        if (
          !(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
            err instanceof Deno.errors.ConnectionReset ||
            err instanceof Deno.errors.BrokenPipe)
        ) throw err;
      }
    })();
    await waitFor(
      async () => {
        const before = written;
        await new Promise((r) => setTimeout(r, 200));
        return written === before && written > 0;
      },
      "writes to stall",
      5000,
      0,
    );
    assert(written < 64 << 20, `${written} bytes accepted without a reader`);
    conn.close();
    await writing;
  } finally {
    backend?.close();
    sink.close();
  }
});
