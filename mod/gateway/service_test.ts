import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type Dialer, UNKNOWN_HEALTH } from "../contracts/mod.ts";
import { ClusterStore, StoreCatalog } from "../kube/mod.ts";
import { nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { GatewayService } from "./service.ts";

const noDialer: Dialer = {
  dialStream: () => Promise.reject(new Error("unused")),
  dialDatagram: () => Promise.reject(new Error("unused")),
};

function make(store: ClusterStore, drainTimeoutMs = 5000) {
  return new GatewayService(
    {
      logger: nullLogger(),
      metrics: new Registry(),
      store,
      catalog: new StoreCatalog(store),
      dialer: noDialer,
      health: UNKNOWN_HEALTH,
    },
    { nodeName: "n", nodeLabels: {}, bindAddresses: ["127.0.0.1"], drainTimeoutMs },
  );
}

Deno.test("GatewayService.stop() is idempotent and safe before start", async () => {
  const gw = make(new ClusterStore());
  await gw.stop();
  assertEquals(gw.status().state, "stopped");
  await gw.start(new AbortController().signal);
  assertEquals(gw.status(), { state: "ready", detail: "no Gateway server selected for this node" });
  await Promise.all([gw.stop(), gw.stop()]);
  assertEquals(gw.status().state, "stopped");
});

Deno.test("GatewayService reports a port it cannot bind and keeps the others", async () => {
  const store = new ClusterStore();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const busy = (taken.addr as Deno.NetAddr).port;
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ok = (free.addr as Deno.NetAddr).port;
  free.close();
  store.upsert("gateways", {
    metadata: { name: "g", namespace: "ns" },
    spec: {
      servers: [{ hosts: ["*"], port: { number: busy, protocol: "HTTP" } }, {
        hosts: ["*"],
        port: { number: ok, protocol: "HTTP" },
      }],
    },
  });
  const gw = make(store);
  try {
    await gw.start(new AbortController().signal);
    const st = gw.status();
    assertEquals(st.state, "degraded");
    assert(st.detail.includes(`127.0.0.1:${busy}`), st.detail);
    assertEquals(gw.boundAddresses, [`127.0.0.1:${ok}`]);
  } finally {
    await gw.stop();
    taken.close();
  }
});

Deno.test("GatewayService.stop() closes idle keep-alive connections without waiting for the drain deadline", async () => {
  const store = new ClusterStore();
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  store.upsert("gateways", {
    metadata: { name: "g", namespace: "ns" },
    spec: { servers: [{ hosts: ["*"], port: { number: port, protocol: "HTTP" } }] },
  });
  const gw = make(store, 10_000);
  await gw.start(new AbortController().signal);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // One request (404: no VirtualService) leaves the connection idle in keep-alive.
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    assert(n && new TextDecoder().decode(buf.subarray(0, n)).startsWith("HTTP/1.1 404"));
    const t0 = Date.now();
    await gw.stop();
    assert(Date.now() - t0 < 2000, "did not wait for the drain deadline");
    assertEquals(await conn.read(buf), null);
  } finally {
    conn.close();
  }
});
