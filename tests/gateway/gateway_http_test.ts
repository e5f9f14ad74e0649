/**
 * End-to-end HTTP tests of the gateway with real curl: EdgeMesh's example shape, weights,
 * prefix and header routes, live VirtualService changes, WebSocket, 404/503/504, limits.
 *
 *   curl ──► gateway 127.0.0.1:P ──► backend on this node (Deno.connect)
 *                                └──► backend "on another node" (LoopbackDialer, tunnel-relay)
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { KubeObject } from "../../mod/kube/mod.ts";
import {
  type Backend,
  curl,
  freePort,
  gateway,
  harness,
  NODE,
  NS,
  pod,
  put,
  REMOTE_NODE,
  service,
  slice,
  startBackend,
  virtualService,
  waitFor,
} from "./support.ts";

async function closeAll(bs: Backend[]) {
  await Promise.all(bs.map((b) => b.close()));
}

Deno.test("EdgeMesh's hostname-lb-random-gateway example reaches backends on this node and through the tunnel", async () => {
  const edge2 = startBackend("hostname-lb-edge2");
  const edge3 = startBackend("hostname-lb-edge3");
  const h = harness();
  const port = freePort();
  try {
    put(
      h.store,
      pod("hostname-lb-edge2", { app: "hostname-lb-edge" }, NODE),
      pod("hostname-lb-edge3", { app: "hostname-lb-edge" }, REMOTE_NODE),
      service("hostname-lb-svc"),
      slice("hostname-lb-svc", edge2, NODE),
      slice("hostname-lb-svc", edge3, REMOTE_NODE),
      gateway("edgemesh-gateway", [{
        hosts: ["*"],
        port: { name: "http-0", number: port, protocol: "HTTP" },
      }]),
      {
        apiVersion: "networking.istio.io/v1alpha3",
        kind: "DestinationRule",
        metadata: { name: "hostname-lb-edge", namespace: NS },
        spec: { host: "hostname-lb-edge", trafficPolicy: { loadBalancer: { simple: "RANDOM" } } },
      } as KubeObject,
      virtualService("edgemesh-gateway-svc", {
        gateways: ["edgemesh-gateway"],
        hosts: ["*"],
        http: [{
          match: [{ uri: { prefix: "/" } }],
          route: [{ destination: { host: "hostname-lb-svc", port: { number: 12345 } } }],
        }],
      }),
    );
    await h.start();
    assertEquals(h.gw.status().state, "ready", h.gw.status().detail);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await curl(`http://127.0.0.1:${port}/`);
      assertEquals(r.status, 200, r.stderr);
      seen.add(r.body.split(" ")[0]);
    }
    assertEquals([...seen].sort(), ["hostname-lb-edge2", "hostname-lb-edge3"]);
    assert(
      h.dialer.dials.length > 0 && h.dialer.dials.every((d) => d.startsWith(REMOTE_NODE)),
      "remote endpoint went through the Dialer",
    );
    assert(
      h.metrics.render().includes(
        `edgemesh_gateway_upstream_connects_total{path="tunnel-relay",result="ok"}`,
      ),
    );
    assert(
      h.metrics.render().includes(
        `edgemesh_gateway_http_requests_total{route="${NS}/edgemesh-gateway-svc#0",code="200"}`,
      ),
    );
  } finally {
    await h.close();
    await closeAll([edge2, edge3]);
  }
});

Deno.test("weights split 1,000 requests 80/20 within tolerance over keep-alive", async () => {
  const a = startBackend("a");
  const b = startBackend("b");
  const h = harness();
  const port = freePort();
  const dir = await Deno.makeTempDir();
  try {
    put(
      h.store,
      service("svc-a"),
      slice("svc-a", a, NODE),
      service("svc-b"),
      slice("svc-b", b, NODE),
      gateway("gw", [{ hosts: ["*"], port: { number: port, protocol: "HTTP", name: "http" } }]),
      virtualService("split", {
        gateways: [`${NS}/gw`],
        hosts: ["*"],
        http: [{
          route: [{ destination: { host: "svc-a" }, weight: 80 }, {
            destination: { host: `svc-b.${NS}.svc.cluster.local`, port: { number: 12345 } },
            weight: 20,
          }],
        }],
      }),
    );
    await h.start();
    const cfg = `${dir}/urls`;
    await Deno.writeTextFile(
      cfg,
      Array.from({ length: 1000 }, () => `url = "http://127.0.0.1:${port}/"\n`).join(""),
    );
    const out = await new Deno.Command("curl", {
      args: ["-sS", "--max-time", "60", "-K", cfg, "-w", "\n"],
      stdout: "piped",
    }).output();
    assertEquals(out.code, 0);
    const lines = new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
    assertEquals(lines.length, 1000);
    const na = lines.filter((l) => l.startsWith("a ")).length;
    const nb = lines.filter((l) => l.startsWith("b ")).length;
    assertEquals(na + nb, 1000);
    // Binomial(1000, 0.2): sd ≈ 12.6; ±60 is beyond 4.7 sd.
    assert(Math.abs(nb - 200) <= 60, `b got ${nb} of 1000`);
  } finally {
    await h.close();
    await closeAll([a, b]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prefix, header, method and query routes pick the right service; rewrite and header ops apply", async () => {
  const api = startBackend("api");
  const v2 = startBackend("v2");
  const web = startBackend("web");
  const h = harness();
  const port = freePort();
  try {
    put(
      h.store,
      ...[["api", api], ["v2", v2], ["web", web]].flatMap((
        [n, be],
      ) => [service(n as string), slice(n as string, be as Backend, NODE)]),
      gateway("gw", [{
        hosts: ["*.example.com", "plain.test"],
        port: { number: port, protocol: "HTTP", name: "http" },
      }]),
      virtualService("routes", {
        gateways: ["mesh", "gw"],
        hosts: ["*.example.com"],
        http: [
          {
            name: "by-header",
            match: [{ headers: { "x-version": { exact: "v2" } } }],
            route: [{ destination: { host: "v2" } }],
          },
          {
            name: "by-query",
            match: [{ queryParams: { beta: { exact: "1" } }, method: { exact: "GET" } }],
            route: [{ destination: { host: "v2" } }],
          },
          {
            name: "api",
            match: [{ uri: { prefix: "/api/" } }],
            rewrite: { uri: "/echo/" },
            headers: {
              request: { set: { "x-added": "yes" }, remove: ["x-secret"] },
              response: { add: { "x-route": "api" } },
            },
            route: [{ destination: { host: "api" } }],
          },
          {
            name: "regex",
            match: [{ uri: { regex: "/item/[0-9]+" } }],
            route: [{ destination: { host: "api" } }],
          },
          { name: "default", route: [{ destination: { host: "web" } }] },
        ],
      }),
    );
    await h.start();
    const base = `http://127.0.0.1:${port}`;
    const host = ["-H", "Host: shop.example.com"];
    let r = await curl(...host, `${base}/anything`);
    assertEquals(r.body, "web /anything");
    r = await curl(...host, "-H", "x-version: v2", `${base}/api/x`);
    assertEquals(r.body, "v2 /api/x");
    r = await curl(...host, `${base}/list?beta=1`);
    assertEquals(r.body, "v2 /list?beta=1");
    r = await curl(...host, `${base}/item/42`);
    assertEquals(r.body, "api /item/42");
    r = await curl(...host, `${base}/item/4x`);
    assertEquals(r.body, "web /item/4x");
    r = await curl(
      ...host,
      "-i",
      "-H",
      "x-secret: s",
      "-H",
      "X-Forwarded-For: 10.0.0.1",
      `${base}/api/users?id=7`,
    );
    assert(r.body.toLowerCase().includes("x-route: api"), r.body);
    const json = JSON.parse(r.body.slice(r.body.indexOf("{")));
    assertEquals(json.path, "/echo/users?id=7");
    assertEquals(json.headers["x-added"], "yes");
    assertEquals(json.headers["x-secret"], undefined);
    assertEquals(json.headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    assertEquals(json.headers["x-forwarded-proto"], "http");
    // A host no VirtualService binds: 404.
    r = await curl("-H", "Host: plain.test", `${base}/`);
    assertEquals(r.status, 404);
  } finally {
    await h.close();
    await closeAll([api, v2, web]);
  }
});

Deno.test("a changed VirtualService takes effect without restart; a malformed one is logged and skipped", async () => {
  const one = startBackend("one");
  const two = startBackend("two");
  const h = harness();
  const port = freePort();
  try {
    put(
      h.store,
      service("one"),
      slice("one", one, NODE),
      service("two"),
      slice("two", two, NODE),
      gateway("gw", [{ hosts: ["*"], port: { number: port, protocol: "HTTP", name: "http" } }]),
      virtualService(
        "vs",
        { gateways: ["gw"], hosts: ["*"], http: [{ route: [{ destination: { host: "one" } }] }] },
        NS,
        "1",
      ),
      virtualService("broken", {
        gateways: ["gw"],
        hosts: ["*"],
        http: [{ match: [{ uri: { regex: "([" } }], route: [{ destination: { host: "two" } }] }],
      }),
    );
    await h.start();
    const url = `http://127.0.0.1:${port}/`;
    assertEquals((await curl(url)).body, "one /");
    assertEquals(h.gw.status().state, "degraded");
    assert(h.gw.status().detail.includes("broken"), h.gw.status().detail);
    assert(h.lines.some((l) => l.level === "error" && String(l.msg).includes(`${NS}/broken`)));
    put(
      h.store,
      virtualService(
        "vs",
        { gateways: ["gw"], hosts: ["*"], http: [{ route: [{ destination: { host: "two" } }] }] },
        NS,
        "2",
      ),
    );
    await waitFor(async () => (await curl(url)).body === "two /", "the new route");
    // The same listener kept serving: no re-bind for a route change.
    assertEquals(h.lines.filter((l) => l.msg === "gateway listener bound").length, 1);
  } finally {
    await h.close();
    await closeAll([one, two]);
  }
});

Deno.test("a WebSocket upgrade passes through to the backend", async () => {
  const ws = startBackend("ws");
  const h = harness();
  const port = freePort();
  try {
    put(
      h.store,
      service("ws"),
      slice("ws", ws, REMOTE_NODE),
      gateway("gw", [{ hosts: ["*"], port: { number: port, protocol: "HTTP", name: "http" } }]),
      virtualService("vs", {
        gateways: ["gw"],
        hosts: ["*"],
        http: [{ route: [{ destination: { host: "ws" } }] }],
      }),
    );
    await h.start();
    const sock = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const got: string[] = [];
    const closed = new Promise<void>((resolve) => sock.onclose = () => resolve());
    await new Promise<void>((resolve, reject) => {
      sock.onopen = () => resolve();
      sock.onerror = (e) => reject(new Error(`websocket error ${(e as ErrorEvent).message}`));
    });
    const three = new Promise<void>((resolve) => {
      sock.onmessage = (e) => {
        got.push(String(e.data));
        if (got.length === 3) resolve();
      };
    });
    sock.send("a");
    sock.send("b");
    sock.send("c");
    await three;
    assertEquals(got, ["ws:a", "ws:b", "ws:c"]);
    sock.close();
    await closed;
  } finally {
    await h.close();
    await ws.close();
  }
});

Deno.test("404 without a route, 503 without endpoints, 504 on timeout, retries move on", async () => {
  const slow = startBackend("slow");
  const h = harness();
  const port = freePort();
  try {
    put(
      h.store,
      service("slow"),
      slice("slow", slow, NODE),
      service("empty"),
      service("dead"),
      slice("dead", { name: "dead", port: freePort() }, NODE),
      gateway("gw", [{ hosts: ["*"], port: { number: port, protocol: "HTTP", name: "http" } }]),
      virtualService("vs", {
        gateways: ["gw"],
        hosts: ["*"],
        http: [
          { match: [{ uri: { prefix: "/empty" } }], route: [{ destination: { host: "empty" } }] },
          { match: [{ uri: { prefix: "/dead" } }], route: [{ destination: { host: "dead" } }] },
          { match: [{ uri: { prefix: "/nosuch" } }], route: [{ destination: { host: "nosuch" } }] },
          {
            match: [{ uri: { prefix: "/drip" } }],
            timeout: "0.3s",
            route: [{ destination: { host: "slow" } }],
          },
          {
            match: [{ uri: { prefix: "/slow" } }],
            timeout: "0.3s",
            route: [{ destination: { host: "slow" } }],
          },
          {
            match: [{ uri: { prefix: "/retry" } }],
            rewrite: { uri: "/slow" },
            retries: { attempts: 2, perTryTimeout: "100ms" },
            timeout: "2s",
            route: [{ destination: { host: "slow" } }],
          },
        ],
      }),
    );
    await h.start();
    const base = `http://127.0.0.1:${port}`;
    assertEquals((await curl(`${base}/none`)).status, 404);
    assertEquals((await curl(`${base}/empty`)).status, 503);
    assertEquals((await curl(`${base}/dead`)).status, 503);
    assertEquals((await curl(`${base}/nosuch`)).status, 503);
    const t0 = Date.now();
    assertEquals((await curl(`${base}/slow?ms=3000`)).status, 504);
    assert(Date.now() - t0 < 2500, "504 came from the route timeout");
    // The route timeout covers the whole response (as Envoy's does), not only its head: a
    // body still dripping when it fires is cut, the status already sent.
    const drip = await curl(`${base}/drip?ms=3000`);
    assertEquals(drip.status, 200);
    assert(drip.code !== 0 && drip.body.includes("slow first"), `cut: ${JSON.stringify(drip)}`);
    assert(!drip.body.includes("slow rest"));
    assert(Date.now() - t0 < 5000, "cut by the route timeout, not the 3 s drip");
    assertEquals((await curl(`${base}/drip?ms=50`)).body, "slow first\nslow rest\n");
    const before = slow.hits;
    assertEquals((await curl(`${base}/retry?ms=1000`)).status, 504);
    assertEquals(slow.hits - before, 3, "one try and two retries");
    assertEquals((await curl(`${base}/slow?ms=10`)).status, 200);
  } finally {
    await h.close();
    await slow.close();
  }
});

Deno.test("streams a large chunked upload, bounds header size (431) and times out slow clients", async () => {
  const echo = startBackend("echo");
  const h = harness({ maxHeaderBytes: 4096, headerTimeoutMs: 300 });
  const port = freePort();
  const dir = await Deno.makeTempDir();
  try {
    put(
      h.store,
      service("echo"),
      slice("echo", echo, NODE),
      gateway("gw", [{ hosts: ["*"], port: { number: port, protocol: "HTTP", name: "http" } }]),
      virtualService("vs", {
        gateways: ["gw"],
        hosts: ["*"],
        http: [{ route: [{ destination: { host: "echo" } }] }],
      }),
    );
    await h.start();
    const base = `http://127.0.0.1:${port}`;
    const file = `${dir}/big`;
    await Deno.writeFile(file, new Uint8Array(8 * 1024 * 1024).fill(97));
    let r = await curl(
      "-H",
      "Transfer-Encoding: chunked",
      "--data-binary",
      `@${file}`,
      `${base}/echo`,
    );
    assertEquals(r.status, 200, r.stderr);
    assertEquals(JSON.parse(r.body).bodyLength, 8 * 1024 * 1024);
    r = await curl("--data-binary", `@${file}`, `${base}/echo`);
    assertEquals(JSON.parse(r.body).bodyLength, 8 * 1024 * 1024);
    r = await curl("-H", `x-big: ${"x".repeat(5000)}`, `${base}/`);
    assertEquals(r.status, 431);
    // A client that sends half a head and stalls is answered 408 and closed.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n"));
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    assert(n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("HTTP/1.1 408"));
    conn.close();
    // Keep-alive: two requests on one connection.
    r = await curl(`${base}/one`, `${base}/two`, "-w", "\n");
    assert(r.body.includes("echo /one") && r.body.includes("echo /two"), r.body);
  } finally {
    await h.close();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a changed Gateway re-binds: new port served, old port closed, unselected Gateways not bound", async () => {
  const be = startBackend("be");
  const h = harness();
  const first = freePort();
  const second = freePort();
  try {
    put(
      h.store,
      service("be"),
      slice("be", be, NODE),
      gateway("gw", [{ hosts: ["*"], port: { number: first, protocol: "HTTP", name: "http" } }]),
      gateway("elsewhere", [{
        hosts: ["*"],
        port: { number: second, protocol: "HTTP", name: "http" },
      }], { kubeedge: "other-node" }),
      virtualService("vs", {
        gateways: ["gw"],
        hosts: ["*"],
        http: [{ route: [{ destination: { host: "be" } }] }],
      }),
    );
    await h.start();
    assertEquals(h.gw.boundAddresses, [`127.0.0.1:${first}`]);
    assertEquals((await curl(`http://127.0.0.1:${first}/`)).body, "be /");
    put(
      h.store,
      gateway("gw", [{ hosts: ["*"], port: { number: second, protocol: "HTTP", name: "http" } }]),
    );
    await waitFor(() => h.gw.boundAddresses.join() === `127.0.0.1:${second}`, "the re-bind");
    assertEquals((await curl(`http://127.0.0.1:${second}/`)).body, "be /");
    assert((await curl(`http://127.0.0.1:${first}/`)).code !== 0, "old port closed");
  } finally {
    await h.close();
    await be.close();
  }
});

Deno.test("a DestinationRule's consistent hash (mod/lb) keeps a header value on one backend", async () => {
  const bs = [startBackend("h1"), startBackend("h2"), startBackend("h3")];
  const h = harness();
  const port = freePort();
  try {
    put(
      h.store,
      service("hashed"),
      ...bs.map((b) => slice("hashed", b, NODE)),
      {
        apiVersion: "networking.istio.io/v1alpha3",
        kind: "DestinationRule",
        metadata: { name: "hashed", namespace: NS },
        spec: {
          host: "hashed",
          trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: "x-user" } } },
        },
      } as KubeObject,
      gateway("gw", [{ hosts: ["*"], port: { number: port, protocol: "HTTP", name: "http" } }]),
      virtualService("vs", {
        gateways: ["gw"],
        hosts: ["*"],
        http: [{ route: [{ destination: { host: "hashed" } }] }],
      }),
    );
    await h.start();
    const users = ["alice", "bob", "carol", "dave", "erin", "frank"];
    const owners = new Set<string>();
    for (const u of users) {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) {
        seen.add((await curl("-H", `x-user: ${u}`, `http://127.0.0.1:${port}/`)).body);
      }
      assertEquals(seen.size, 1, `${u} stayed on one backend`);
      owners.add([...seen][0]);
    }
    assert(owners.size > 1, "different users spread over backends");
  } finally {
    await h.close();
    await closeAll(bs);
  }
});

Deno.test("with lanDirect, an endpoint on another node is reached by kernel TCP, not the tunnel", async () => {
  const be = startBackend("remote");
  const h = harness({ lanDirect: true });
  const port = freePort();
  try {
    put(
      h.store,
      service("remote"),
      slice("remote", be, REMOTE_NODE),
      gateway("gw", [{ hosts: ["*"], port: { number: port, protocol: "HTTP", name: "http" } }]),
      virtualService("vs", {
        gateways: ["gw"],
        hosts: ["*"],
        http: [{ route: [{ destination: { host: "remote" } }] }],
      }),
    );
    await h.start();
    assertEquals((await curl(`http://127.0.0.1:${port}/`)).body, "remote /");
    assertEquals(h.dialer.dials, []);
    assert(
      h.metrics.render().includes(
        `edgemesh_gateway_upstream_connects_total{path="lan",result="ok"}`,
      ),
    );
  } finally {
    await h.close();
    await be.close();
  }
});

Deno.test("an HTTP server with tls.httpsRedirect answers 301 to https", async () => {
  const h = harness();
  const port = freePort();
  try {
    put(
      h.store,
      gateway("gw", [{
        hosts: ["shop.example.com"],
        port: { number: port, protocol: "HTTP", name: "http" },
        tls: { httpsRedirect: true },
      }]),
    );
    await h.start();
    const r = await curl(
      "-i",
      "-H",
      `Host: shop.example.com:${port}`,
      `http://127.0.0.1:${port}/cart?x=1`,
    );
    assertEquals(r.status, 301);
    assert(r.body.includes("Location: https://shop.example.com/cart?x=1"), r.body);
  } finally {
    await h.close();
  }
});
