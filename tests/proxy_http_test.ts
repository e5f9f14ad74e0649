/** The proxy's HTTP, WebSocket and TLS paths, checked with curl and real servers. */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { putDestinationRule, putService } from "./support/cluster_fixture.ts";
import { httpNamed, run } from "./support/backends.ts";
import { startProxy } from "./support/proxy_harness.ts";
import { TestPki } from "./support/pki.ts";
import { waitFor } from "./support/wait.ts";

const HTTP_PORTS = [{ name: "http", port: 80, protocol: "TCP" as const }];

function curl(args: string[]): Promise<string> {
  return run("curl", ["-s", "--max-time", "5", ...args]);
}

async function threeBackends() {
  const bs = ["a", "b", "c"].map((n) => httpNamed(n));
  const h = await startProxy();
  putService(h.store, {
    name: "web",
    clusterIP: "198.19.1.1",
    ports: HTTP_PORTS,
    endpoints: bs.map((b) => ({ ip: "127.0.0.1", port: b.port, node: "n1" })),
  });
  const port = await h.listener("web", 80);
  return {
    h,
    port,
    [Symbol.asyncDispose]: async () => {
      await h.proxy.stop();
      for (const b of bs) await b.close();
    },
  };
}

Deno.test("consistentHash.httpHeaderName: curl with the same header always reaches the same backend", async () => {
  await using t = await threeBackends();
  putDestinationRule(t.h.store, "default", "web", {
    trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: "X-User" } } },
  });
  await t.h.proxy.resync();
  const byUser = new Map<string, Set<string>>();
  for (let u = 0; u < 12; u++) {
    for (let i = 0; i < 3; i++) {
      const name = await curl(["-H", `X-User: user${u}`, `http://127.0.0.1:${t.port}/`]);
      byUser.set(`user${u}`, (byUser.get(`user${u}`) ?? new Set()).add(name));
    }
  }
  for (const [u, names] of byUser) assertEquals(names.size, 1, `${u} reached ${[...names]}`);
  const all = new Set([...byUser.values()].flatMap((s) => [...s]));
  assert(all.size >= 2, `12 users all on ${[...all]}`);
});

Deno.test("consistentHash.httpCookie: the cookie is set when absent, then the client sticks", async () => {
  await using t = await threeBackends();
  putDestinationRule(t.h.store, "default", "web", {
    trafficPolicy: {
      loadBalancer: { consistentHash: { httpCookie: { name: "em-session", ttl: "3600s" } } },
    },
  });
  await t.h.proxy.resync();
  const dir = await Deno.makeTempDir();
  try {
    const seen = new Set<string>();
    for (let client = 0; client < 6; client++) {
      const jar = `${dir}/jar${client}`;
      const head = await curl([
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-c",
        jar,
        `http://127.0.0.1:${t.port}/`,
      ]);
      assert(/^set-cookie: em-session=[0-9a-f]+; Path=\/; Max-Age=3600\r?$/im.test(head), head);
      const names = new Set<string>();
      for (let i = 0; i < 4; i++) names.add(await curl(["-b", jar, `http://127.0.0.1:${t.port}/`]));
      assertEquals(names.size, 1);
      seen.add([...names][0]);
      const again = await curl([
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-b",
        jar,
        `http://127.0.0.1:${t.port}/`,
      ]);
      assert(!/set-cookie/i.test(again), "cookie set again although present");
    }
    assert(seen.size >= 2, `6 clients all on ${[...seen]}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("consistentHash.httpQueryParameterName: the same parameter value sticks; a keep-alive stays usable", async () => {
  await using t = await threeBackends();
  putDestinationRule(t.h.store, "default", "web", {
    trafficPolicy: { loadBalancer: { consistentHash: { httpQueryParameterName: "u" } } },
  });
  await t.h.proxy.resync();
  const all = new Set<string>();
  for (let u = 0; u < 10; u++) {
    const names = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`http://127.0.0.1:${t.port}/x?u=${u}&i=${i}`, {
        headers: { connection: "close" },
      });
      names.add(await r.text());
    }
    assertEquals(names.size, 1);
    all.add([...names][0]);
  }
  assert(all.size >= 2);
  // Two requests on one keep-alive connection (curl reuses it for both URLs).
  const out = await curl([`http://127.0.0.1:${t.port}/?u=1`, `http://127.0.0.1:${t.port}/?u=1`]);
  assertEquals(out.length, 2);
});

Deno.test("consistentHash.useSourceIp: every connection from 127.0.0.1 reaches one backend", async () => {
  await using t = await threeBackends();
  putDestinationRule(t.h.store, "default", "web", {
    trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } },
  });
  await t.h.proxy.resync();
  const names = new Set<string>();
  for (let i = 0; i < 8; i++) names.add(await curl([`http://127.0.0.1:${t.port}/`]));
  assertEquals(names.size, 1);
});

Deno.test("Service sessionAffinity ClientIP pins a client to one backend", async () => {
  const bs = ["a", "b", "c"].map((n) => httpNamed(n));
  await using h = await startProxy();
  try {
    putService(h.store, {
      name: "web",
      clusterIP: "198.19.1.2",
      ports: HTTP_PORTS,
      sessionAffinity: "ClientIP",
      affinityTimeoutSeconds: 60,
      endpoints: bs.map((b) => ({ ip: "127.0.0.1", port: b.port, node: "n1" })),
    });
    const port = await h.listener("web", 80);
    const names = new Set<string>();
    for (let i = 0; i < 8; i++) names.add(await curl([`http://127.0.0.1:${port}/`]));
    assertEquals(names.size, 1);
  } finally {
    for (const b of bs) await b.close();
  }
});

async function wsEcho(port: number, msg: string): Promise<string> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error("websocket error"));
    });
    const reply = new Promise<string>((resolve) => (ws.onmessage = (e) => resolve(String(e.data))));
    ws.send(msg);
    return await reply;
  } finally {
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
  }
}

Deno.test("a WebSocket echo passes through, spliced at L4 and after a parsed head", async () => {
  await using t = await threeBackends();
  assert(/^[abc]:hello$/.test(await wsEcho(t.port, "hello")));
  putDestinationRule(t.h.store, "default", "web", {
    trafficPolicy: {
      loadBalancer: { consistentHash: { httpHeaderName: "sec-websocket-version" } },
    },
  });
  await t.h.proxy.resync();
  const names = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const r = await wsEcho(t.port, `m${i}`);
    assert(/^[abc]:m\d$/.test(r), r);
    names.add(r[0]);
  }
  assertEquals(names.size, 1);
});

Deno.test("HTTPS passes through untouched (curl -k), with an optional hash on SNI", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cert = await (await TestPki.create(dir)).selfSigned("web.test", {
      days: 1,
      san: ["DNS:web.test", "DNS:*.web.test"],
    });
    const tls = {
      cert: await Deno.readTextFile(cert.certFile),
      key: await Deno.readTextFile(cert.keyFile),
    };
    const bs = ["a", "b", "c"].map((n) => httpNamed(n, tls));
    await using h = await startProxy();
    try {
      putService(h.store, {
        name: "secure",
        clusterIP: "198.19.1.3",
        ports: [{ name: "https", port: 443, protocol: "TCP" }],
        endpoints: bs.map((b) => ({ ip: "127.0.0.1", port: b.port, node: "n1" })),
      });
      const port = await h.listener("secure", 443);
      const rr = new Set<string>();
      for (let i = 0; i < 3; i++) rr.add(await curl(["-k", `https://127.0.0.1:${port}/`]));
      assertEquals(rr.size, 3);
      // The certificate the client sees is the backend's own (no termination).
      const verified = await curl([
        "--cacert",
        cert.certFile,
        "--connect-to",
        `web.test:443:127.0.0.1:${port}`,
        "https://web.test/",
      ]);
      assert(["a", "b", "c"].includes(verified));

      putDestinationRule(h.store, "default", "secure", {
        trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: "host" } } },
      });
      await h.proxy.resync();
      const all = new Set<string>();
      for (let s = 0; s < 8; s++) {
        const host = `s${s}.web.test`;
        const names = new Set<string>();
        for (let i = 0; i < 2; i++) {
          names.add(
            await curl(["-k", "--connect-to", `${host}:443:127.0.0.1:${port}`, `https://${host}/`]),
          );
        }
        assertEquals(names.size, 1, `${host}: ${[...names]}`);
        all.add([...names][0]);
      }
      assert(all.size >= 2);
    } finally {
      for (const b of bs) await b.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Reads one HTTP/1.1 response with a Content-Length or chunked body from a raw connection. */
async function readResponse(conn: Deno.Conn, pending: { buf: string }): Promise<string> {
  const chunk = new Uint8Array(65536);
  const dec = new TextDecoder();
  for (;;) {
    const end = pending.buf.indexOf("\r\n\r\n");
    if (end >= 0) {
      const head = pending.buf.slice(0, end);
      const cl = /content-length: (\d+)/i.exec(head);
      if (cl) {
        const total = end + 4 + Number(cl[1]);
        if (pending.buf.length >= total) {
          const body = pending.buf.slice(end + 4, total);
          pending.buf = pending.buf.slice(total);
          return body;
        }
      } else if (/transfer-encoding: chunked/i.test(head)) {
        const rest = pending.buf.slice(end + 4);
        const fin = rest.indexOf("0\r\n\r\n");
        if (fin >= 0) {
          let body = "";
          let s = rest.slice(0, fin);
          while (s.length) {
            const nl = s.indexOf("\r\n");
            const n = parseInt(s.slice(0, nl), 16);
            body += s.slice(nl + 2, nl + 2 + n);
            s = s.slice(nl + 4 + n);
          }
          pending.buf = rest.slice(fin + 5);
          return body;
        }
      }
    }
    const n = await conn.read(chunk);
    if (n === null) throw new Error(`connection closed; buffered ${JSON.stringify(pending.buf)}`);
    pending.buf += dec.decode(chunk.subarray(0, n));
  }
}

Deno.test("a keep-alive connection is re-balanced per request when the hash needs it, bodies framed", async () => {
  await using t = await threeBackends();
  putDestinationRule(t.h.store, "default", "web", {
    trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: "x-user" } } },
  });
  await t.h.proxy.resync();
  const owner = new Map<string, string>();
  for (let u = 0; owner.size < 12; u++) {
    owner.set(`u${u}`, await curl(["-H", `x-user: u${u}`, `http://127.0.0.1:${t.port}/`]));
  }
  const users = [...owner.keys()];
  assert(new Set(owner.values()).size >= 2);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
  const enc = new TextEncoder();
  const pending = { buf: "" };
  try {
    for (let round = 0; round < 2; round++) {
      for (const u of users) {
        await conn.write(
          enc.encode(`GET /?r=${round} HTTP/1.1\r\nHost: web\r\nX-User: ${u}\r\n\r\n`),
        );
        assertEquals(await readResponse(conn, pending), owner.get(u));
      }
    }
    // Bodies: Content-Length and chunked requests keep the framing intact.
    const u = users[0];
    await conn.write(
      enc.encode(`POST / HTTP/1.1\r\nHost: web\r\nX-User: ${u}\r\nContent-Length: 5\r\n\r\nhello`),
    );
    assertEquals(await readResponse(conn, pending), `${owner.get(u)}:5`);
    await conn.write(
      enc.encode(
        `POST / HTTP/1.1\r\nHost: web\r\nX-User: ${
          users[1]
        }\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n`,
      ),
    );
    assertEquals(await readResponse(conn, pending), `${owner.get(users[1])}:7`);
    // Pipelined requests are answered in order.
    await conn.write(
      enc.encode(
        users.slice(0, 4).map((x) => `GET / HTTP/1.1\r\nHost: web\r\nX-User: ${x}\r\n\r\n`).join(
          "",
        ),
      ),
    );
    for (const x of users.slice(0, 4)) {
      assertEquals(await readResponse(conn, pending), owner.get(x));
    }
  } finally {
    conn.close();
  }
});

/**
 * A backend on a raw socket: answers each request head with `reply(n)` (n = requests seen
 * on that connection so far, from 1) and closes the connection when `closeAfter` says so.
 */
function rawBackend(
  o: { reply: (n: number) => string | null; closeAfter: (n: number) => boolean },
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const enc = new TextEncoder();
  let connections = 0;
  let closed = 0;
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const c of listener) {
      connections++;
      conns.add(c);
      (async () => {
        const buf = new Uint8Array(65536);
        let text = "";
        let n = 0;
        try {
          for (;;) {
            const r = await c.read(buf);
            if (r === null) break;
            text += new TextDecoder().decode(buf.subarray(0, r));
            let end;
            while ((end = text.indexOf("\r\n\r\n")) >= 0) {
              text = text.slice(end + 4);
              const answer = o.reply(++n);
              if (answer !== null) await c.write(enc.encode(answer));
              if (o.closeAfter(n)) throw new Error("close");
            }
          }
        } catch { /* closing */ }
        conns.delete(c);
        c.close();
        closed++;
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    connections: () => connections,
    closed: () => closed,
    async close() {
      listener.close();
      for (const c of conns) c.close();
      await serving;
    },
  };
}

async function perRequestProxyFor(port: number) {
  const h = await startProxy();
  putService(h.store, {
    name: "raw",
    clusterIP: "198.19.1.9",
    ports: HTTP_PORTS,
    endpoints: [{ ip: "127.0.0.1", port, node: "n1" }],
  });
  putDestinationRule(h.store, "default", "raw", {
    trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: "x-user" } } },
  });
  await h.proxy.resync();
  return { h, port: await h.listener("raw", 80) };
}

Deno.test("per-request HTTP: a kept upstream connection the endpoint closed while idle is replaced, the request retried", async () => {
  const ok = (n: number) => `HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nok-${n}`;
  // The endpoint answers one request per connection, without saying `connection: close`.
  const b = rawBackend({ reply: ok, closeAfter: () => true });
  const { h, port } = await perRequestProxyFor(b.port);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const pending = { buf: "" };
  const enc = new TextEncoder();
  try {
    for (let i = 0; i < 3; i++) {
      await conn.write(enc.encode(`GET /${i} HTTP/1.1\r\nHost: raw\r\nX-User: u\r\n\r\n`));
      assertEquals(await readResponse(conn, pending), "ok-1");
      // The endpoint has closed its side before the next request goes out.
      await waitFor(() => b.closed() === i + 1, "the endpoint closed the connection");
    }
    assertEquals(b.connections(), 3);
  } finally {
    conn.close();
    await h.proxy.stop();
    await b.close();
  }
});

Deno.test("per-request HTTP: an endpoint that closes without responding gets the client a 502, not a dropped connection", async () => {
  const b = rawBackend({ reply: () => null, closeAfter: () => true });
  const { h, port } = await perRequestProxyFor(b.port);
  try {
    const out = await run("curl", [
      "-s",
      "--max-time",
      "5",
      "-o",
      "-",
      "-w",
      "\n%{http_code}",
      "-H",
      "x-user: u",
      `http://127.0.0.1:${port}/`,
    ]);
    const [body, code] = [
      out.slice(0, out.lastIndexOf("\n")),
      out.slice(out.lastIndexOf("\n") + 1),
    ];
    assertEquals(code, "502");
    assert(body.includes("failed before responding"), body);
    // A body cannot be replayed: a POST on a kept connection that died gets a 502 too.
    const b2 = rawBackend({
      reply: (n) => n === 1 ? "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" : null,
      closeAfter: (n) => n >= 2,
    });
    const second = await perRequestProxyFor(b2.port);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: second.port });
      const pending = { buf: "" };
      const enc = new TextEncoder();
      try {
        await conn.write(enc.encode("GET / HTTP/1.1\r\nHost: raw\r\nX-User: u\r\n\r\n"));
        assertEquals(await readResponse(conn, pending), "ok");
        await conn.write(
          enc.encode("POST / HTTP/1.1\r\nHost: raw\r\nX-User: u\r\nContent-Length: 3\r\n\r\nabc"),
        );
        assert((await readResponse(conn, pending)).includes("failed before responding"));
      } finally {
        conn.close();
      }
    } finally {
      await second.h.proxy.stop();
      await b2.close();
    }
  } finally {
    await h.proxy.stop();
    await b.close();
  }
});
