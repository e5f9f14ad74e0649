/**
 * End-to-end TLS and L4 tests of the gateway with real curl and certificates made by
 * `openssl req -x509` in a temp dir: HTTPS termination and reload, MUTUAL, a missing Secret,
 * TCP routes, TLS passthrough by SNI.
 *
 *   curl -k ──TLS──► gateway (node:tls, cert from Secret) ──HTTP──► backend
 *   curl -k ──TLS──► gateway (reads SNI only) ──same bytes──► TLS backend
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import tls from "node:tls";
import type { KubeObject } from "../../mod/kube/mod.ts";
import {
  curl,
  freePort,
  gateway,
  harness,
  makeCert,
  NODE,
  put,
  service,
  slice,
  startBackend,
  tlsSecret,
  virtualService,
  waitFor,
} from "./support.ts";

Deno.test("HTTPS terminates with the Secret's certificate and reloads it when the Secret changes", async () => {
  const be = startBackend("web");
  const h = harness();
  const port = freePort();
  const dir = await Deno.makeTempDir();
  try {
    const first = await makeCert(dir, "first", "first.example.com");
    const second = await makeCert(dir, "second", "second.example.com");
    put(
      h.store,
      service("web"),
      slice("web", be, NODE),
      tlsSecret("gw-secret", first.crt, first.key),
      gateway("gw", [{
        hosts: ["*"],
        port: { number: port, protocol: "HTTPS", name: "https" },
        tls: { mode: "SIMPLE", credentialName: "gw-secret" },
      }]),
      virtualService("vs", {
        gateways: ["gw"],
        hosts: ["*"],
        http: [{ route: [{ destination: { host: "web" } }] }],
      }),
    );
    await h.start();
    assertEquals(h.gw.status().state, "ready", h.gw.status().detail);
    let r = await curl("-k", "-v", `https://127.0.0.1:${port}/echo`);
    assertEquals(r.status, 200, r.stderr);
    assert(r.stderr.includes("first.example.com"), "served the first certificate");
    assertEquals(JSON.parse(r.body).headers["x-forwarded-proto"], "https");
    put(h.store, tlsSecret("gw-secret", second.crt, second.key));
    r = await curl("-k", "-v", `https://127.0.0.1:${port}/`);
    assertEquals(r.status, 200, r.stderr);
    assert(r.stderr.includes("second.example.com"), "served the new certificate without restart");
    // Verification against the certificate itself works too (SAN 127.0.0.1).
    r = await curl("--cacert", second.crtPath, `https://127.0.0.1:${port}/`);
    assertEquals(r.body, "web /");
  } finally {
    await h.close();
    await be.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MUTUAL requires a client certificate signed by ca.crt (EdgeMesh's HTTP+tls example shape)", async () => {
  const be = startBackend("web");
  const h = harness();
  const port = freePort();
  const dir = await Deno.makeTempDir();
  try {
    const server = await makeCert(dir, "tls", "gw.example.com");
    const stranger = await makeCert(dir, "stranger", "stranger.example.com");
    put(
      h.store,
      service("hostname-lb-svc"),
      slice("hostname-lb-svc", be, NODE),
      // As in EdgeMesh's example: the same self-signed certificate serves, is the CA, and is
      // the client certificate.
      tlsSecret("gw-secret", server.crt, server.key, server.crt),
      gateway("edgemesh-gateway", [{
        hosts: ["*"],
        port: { name: "http-0", number: port, protocol: "HTTP" },
        tls: { credentialName: "gw-secret", minProtocolVersion: "TLSV1_2", mode: "MUTUAL" },
      }]),
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
    const url = `https://127.0.0.1:${port}/`;
    let r = await curl("-k", "--cert", server.crtPath, "--key", server.keyPath, url);
    assertEquals(r.status, 200, r.stderr);
    assertEquals(r.body, "web /");
    r = await curl("-k", url);
    assert(r.status !== 200, "no client certificate: refused");
    r = await curl("-k", "--cert", stranger.crtPath, "--key", stranger.keyPath, url);
    assert(r.status !== 200, "untrusted client certificate: refused");
    assert(h.metrics.render().includes(`reason="client_certificate"`));
  } finally {
    await h.close();
    await be.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing Secret fails only its server, is logged and in status, and recovers when the Secret appears", async () => {
  const be = startBackend("web");
  const h = harness();
  const httpPort = freePort();
  const tlsPort = freePort();
  const dir = await Deno.makeTempDir();
  try {
    const cert = await makeCert(dir, "tls", "gw.example.com");
    put(
      h.store,
      service("web"),
      slice("web", be, NODE),
      gateway("gw", [
        { hosts: ["*"], port: { number: httpPort, protocol: "HTTP", name: "http" } },
        {
          hosts: ["*"],
          port: { number: tlsPort, protocol: "HTTPS", name: "https" },
          tls: { mode: "SIMPLE", credentialName: "absent" },
        },
      ]),
      virtualService("vs", {
        gateways: ["gw"],
        hosts: ["*"],
        http: [{ route: [{ destination: { host: "web" } }] }],
      }),
    );
    await h.start();
    const st = h.gw.status();
    assertEquals(st.state, "degraded");
    assert(st.detail.includes("absent") && st.detail.includes("not found"), st.detail);
    assert(h.lines.some((l) => l.level === "error" && String(l.error).includes("absent")));
    assertEquals((await curl(`http://127.0.0.1:${httpPort}/`)).status, 200);
    const r = await curl("-k", `https://127.0.0.1:${tlsPort}/`);
    assert(r.code !== 0, "TLS handshake refused");
    // A Secret that does not parse is reported the same way.
    put(
      h.store,
      {
        ...tlsSecret("absent", "garbage", "garbage"),
        metadata: {
          name: "absent",
          namespace: tlsSecret("x", "", "").metadata.namespace,
          resourceVersion: "1",
        },
      } as KubeObject,
    );
    await waitFor(
      () => h.gw.status().detail.includes("tls.crt holds no PEM"),
      "parse error in status",
    );
    put(
      h.store,
      {
        ...tlsSecret("absent", cert.crt, cert.key),
        metadata: { ...tlsSecret("absent", "", "").metadata, resourceVersion: "2" },
      } as KubeObject,
    );
    await waitFor(() => h.gw.status().state === "ready", "ready after the Secret appeared");
    assertEquals((await curl("-k", `https://127.0.0.1:${tlsPort}/`)).body, "web /");
  } finally {
    await h.close();
    await be.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TCP servers proxy bytes both ways; TLS passthrough routes by SNI without terminating", async () => {
  const dir = await Deno.makeTempDir();
  const cert = await makeCert(dir, "backend", "a.example.com");
  // A TCP echo backend.
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const echoLoop = (async () => {
    for await (const c of echo) {
      (async () => {
        await c.readable.pipeTo(c.writable);
      })().catch(() => {});
    }
  })().catch(() => {});
  // A TLS backend only reachable by passthrough.
  const ac = new AbortController();
  const tlsBackend = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      cert: cert.crt,
      key: cert.key,
      signal: ac.signal,
      onListen: () => {},
    },
    () => new Response("tls backend"),
  );
  const h = harness();
  const tcpPort = freePort();
  const passPort = freePort();
  try {
    put(
      h.store,
      service("echo"),
      slice("echo", { name: "echo", port: (echo.addr as Deno.NetAddr).port }, NODE),
      service("secure"),
      slice("secure", { name: "secure", port: tlsBackend.addr.port }, NODE),
      gateway("gw", [
        { hosts: ["*"], port: { number: tcpPort, protocol: "TCP", name: "tcp" } },
        {
          hosts: ["*.example.com"],
          port: { number: passPort, protocol: "TLS", name: "tls" },
          tls: { mode: "PASSTHROUGH" },
        },
      ]),
      virtualService("tcp", {
        gateways: ["gw"],
        hosts: ["*"],
        tcp: [{ match: [{ port: tcpPort }], route: [{ destination: { host: "echo" } }] }],
      }),
      virtualService("pass", {
        gateways: ["gw"],
        hosts: ["*.example.com"],
        tls: [{
          match: [{ sniHosts: ["a.example.com"], port: passPort }],
          route: [{ destination: { host: "secure" } }],
        }],
      }),
    );
    await h.start();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: tcpPort });
    await conn.write(new TextEncoder().encode("hello gateway"));
    await conn.closeWrite();
    const got = await new Response(conn.readable).text();
    assertEquals(got, "hello gateway", JSON.stringify(h.lines.slice(-8)));
    let r = await curl(
      "--cacert",
      cert.crtPath,
      "--resolve",
      `a.example.com:${passPort}:127.0.0.1`,
      `https://a.example.com:${passPort}/`,
    );
    assertEquals(r.body, "tls backend", r.stderr);
    r = await curl(
      "-k",
      "--resolve",
      `b.example.com:${passPort}:127.0.0.1`,
      `https://b.example.com:${passPort}/`,
    );
    assert(r.code !== 0, "unknown SNI is not routed");
    assert(
      h.metrics.render().includes(
        `edgemesh_gateway_tcp_connections_total{route="${
          "gw-test-" + Deno.pid
        }/tcp#tcp0",result="ok"}`,
      ),
    );
  } finally {
    await h.close();
    echo.close();
    await echoLoop;
    ac.abort();
    await tlsBackend.finished;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one HTTPS port serves a certificate per SNI host; a TLS server terminates and routes tcp[]", async () => {
  const dir = await Deno.makeTempDir();
  const be = startBackend("web");
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const echoLoop = (async () => {
    for await (const c of echo) c.readable.pipeTo(c.writable).catch(() => {});
  })().catch(() => {});
  const h = harness();
  const httpsPort = freePort();
  const tlsPort = freePort();
  try {
    const a = await makeCert(dir, "a", "a.example.com");
    const b = await makeCert(dir, "b", "b.example.com");
    put(
      h.store,
      service("web"),
      slice("web", be, NODE),
      service("echo"),
      slice("echo", { name: "echo", port: (echo.addr as Deno.NetAddr).port }, NODE),
      tlsSecret("cert-a", a.crt, a.key),
      tlsSecret("cert-b", b.crt, b.key),
      gateway("gw", [
        {
          hosts: ["a.example.com"],
          port: { number: httpsPort, protocol: "HTTPS", name: "https-a" },
          tls: { mode: "SIMPLE", credentialName: "cert-a" },
        },
        {
          hosts: ["b.example.com"],
          port: { number: httpsPort, protocol: "HTTPS", name: "https-b" },
          tls: { mode: "SIMPLE", credentialName: "cert-b" },
        },
        {
          hosts: ["*"],
          port: { number: tlsPort, protocol: "TLS", name: "tls" },
          tls: { mode: "SIMPLE", credentialName: "cert-a" },
        },
      ]),
      virtualService("web", {
        gateways: ["gw"],
        hosts: ["a.example.com", "b.example.com"],
        http: [{ route: [{ destination: { host: "web" } }] }],
      }),
      virtualService("echo", {
        gateways: ["gw"],
        hosts: ["*"],
        tcp: [{ match: [{ port: tlsPort }], route: [{ destination: { host: "echo" } }] }],
      }),
    );
    await h.start();
    for (const [host, cert] of [["a.example.com", a], ["b.example.com", b]] as const) {
      const r = await curl(
        "--cacert",
        cert.crtPath,
        "--resolve",
        `${host}:${httpsPort}:127.0.0.1`,
        `https://${host}:${httpsPort}/`,
      );
      assertEquals(r.body, "web /", r.stderr);
    }
    const sock = tls.connect({ host: "127.0.0.1", port: tlsPort, rejectUnauthorized: false });
    const got = await new Promise<string>((resolve, reject) => {
      let text = "";
      sock.on("data", (d: Uint8Array) => text += new TextDecoder().decode(d));
      sock.on("end", () => resolve(text));
      sock.on("error", reject);
      sock.on("secureConnect", () => sock.end("ping over tls"));
    });
    sock.destroy();
    assertEquals(got, "ping over tls");
  } finally {
    await h.close();
    await be.close();
    echo.close();
    await echoLoop;
    await Deno.remove(dir, { recursive: true });
  }
});
