/** UDP through the proxy: per-client flows, boundaries, idle timeout, bounded flows. */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { putService } from "./support/cluster_fixture.ts";
import { udpEcho } from "./support/backends.ts";
import { startProxy } from "./support/proxy_harness.ts";
import { waitFor } from "./support/wait.ts";

const UDP_PORTS = [{ name: "dns", port: 53, protocol: "UDP" as const }];

/** Sends `count` numbered datagrams of varied sizes with at most `window` unanswered; returns echoes. */
async function pingPong(port: number, count: number, window: number): Promise<number> {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  let received = 0;
  let sent = 0;
  const seen = new Uint8Array(count);
  try {
    const deadline = AbortSignal.timeout(20_000);
    const reader = (async () => {
      const buf = new Uint8Array(2048);
      while (received < count) {
        const [d] = await sock.receive(buf);
        const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
        const seq = v.getUint32(0);
        // The datagram boundary is preserved: its length is encoded in it.
        assertEquals(d.length, v.getUint16(4));
        assertEquals(seen[seq], 0);
        seen[seq] = 1;
        received++;
      }
    })();
    while (sent < count) {
      if (deadline.aborted) {
        throw new Error(`sent ${sent}, received ${received} before the deadline`);
      }
      if (sent - received >= window) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      const len = 8 + (sent % 500);
      const d = new Uint8Array(len);
      const v = new DataView(d.buffer);
      v.setUint32(0, sent);
      v.setUint16(4, len);
      await sock.send(d, to);
      sent++;
    }
    await Promise.race([
      reader,
      new Promise((_, rej) =>
        deadline.addEventListener("abort", () => rej(new Error(`received ${received}/${count}`)))
      ),
    ]);
    return received;
  } finally {
    sock.close();
  }
}

Deno.test("UDP echo: 10,000 datagrams through the proxy, none lost, boundaries kept", async () => {
  const echo = udpEcho();
  await using h = await startProxy();
  try {
    putService(h.store, {
      name: "dns",
      clusterIP: "198.19.2.1",
      ports: UDP_PORTS,
      endpoints: [{ ip: "127.0.0.1", port: echo.port, node: "n1" }],
    });
    const port = await h.listener("dns", 53, "udp");
    assertEquals(await pingPong(port, 10_000, 32), 10_000);
    const labels = { service: "default/dns", port: "53/udp" };
    assertEquals(h.metrics.counter("edgemesh_proxy_connections_total", "", []).get(labels), 1);
  } finally {
    await echo.close();
  }
});

Deno.test("UDP flows cross nodes through the Dialer's datagram channel", async () => {
  const echo = udpEcho();
  await using h = await startProxy({ lanDirect: false });
  try {
    putService(h.store, {
      name: "dns",
      clusterIP: "198.19.2.2",
      ports: UDP_PORTS,
      endpoints: [{ ip: "127.0.0.1", port: echo.port, node: "n2" }],
    });
    const port = await h.listener("dns", 53, "udp");
    assertEquals(await pingPong(port, 500, 16), 500);
    assertEquals(h.dialer.dials.map((d) => d.protocol), ["udp"]);
    const picks = h.metrics.counter("edgemesh_proxy_endpoint_picks_total", "", []);
    assertEquals(
      picks.get({
        service: "default/dns",
        port: "53/udp",
        endpoint: `127.0.0.1:${echo.port}`,
        path: "tunnel-relay",
      }),
      1,
    );
  } finally {
    await echo.close();
  }
});

Deno.test("UDP flows to another node's endpoint take the LAN path when its address answers, without the Dialer", async () => {
  const echo = udpEcho();
  await using h = await startProxy({ lanDirect: true });
  try {
    putService(h.store, {
      name: "dns",
      clusterIP: "198.19.2.3",
      ports: UDP_PORTS,
      endpoints: [{ ip: "127.0.0.1", port: echo.port, node: "n2" }],
    });
    const port = await h.listener("dns", 53, "udp");
    // No TCP connection has told the proxy that 127.0.0.1 is reachable: the probe does.
    assertEquals(await pingPong(port, 200, 16), 200);
    assertEquals(h.dialer.dials, []);
    const picks = h.metrics.counter("edgemesh_proxy_endpoint_picks_total", "", []);
    assertEquals(
      picks.get({
        service: "default/dns",
        port: "53/udp",
        endpoint: `127.0.0.1:${echo.port}`,
        path: "lan",
      }),
      1,
    );
  } finally {
    await echo.close();
  }
});

Deno.test("UDP flows end after the idle timeout and are bounded per port", async () => {
  const echo = udpEcho();
  await using h = await startProxy({ udpIdleTimeoutMs: 150, udpMaxFlows: 2 });
  try {
    putService(h.store, {
      name: "dns",
      clusterIP: "198.19.2.3",
      ports: UDP_PORTS,
      endpoints: [{ ip: "127.0.0.1", port: echo.port, node: "n1" }],
    });
    const port = await h.listener("dns", 53, "udp");
    const active = () =>
      h.metrics.gauge("edgemesh_proxy_active_connections", "", []).get({
        service: "default/dns",
        port: "53/udp",
      });
    const clients = [0, 1, 2].map(() =>
      Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })
    );
    try {
      for (const c of clients.slice(0, 2)) {
        await c.send(new Uint8Array([1]), { transport: "udp", hostname: "127.0.0.1", port });
        await c.receive();
      }
      assertEquals(active(), 2);
      await clients[2].send(new Uint8Array([1]), { transport: "udp", hostname: "127.0.0.1", port });
      const dropped = h.metrics.counter("edgemesh_proxy_udp_dropped_total", "", []);
      await waitFor(
        () => dropped.get({ service: "default/dns", port: "53/udp", reason: "flow_limit" }) === 1,
        "flow limit drop",
      );
      await waitFor(() => active() === 0, "idle flows closed", 3000);
      await clients[2].send(new Uint8Array([2]), { transport: "udp", hostname: "127.0.0.1", port });
      const [d] = await clients[2].receive();
      assertEquals([...d], [2]);
      assert(active() === 1);
    } finally {
      for (const c of clients) c.close();
    }
  } finally {
    await echo.close();
  }
});
