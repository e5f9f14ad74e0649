import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import type { Dialer } from "../contracts/mod.ts";
import { DialError } from "../contracts/mod.ts";
import { HealthTunnelError } from "./errors.ts";
import { FakeTunnel } from "./test_dialer.ts";
import { tunnelFetch } from "./tunnel_http.ts";

/** Dials 127.0.0.1:`port` whatever the target; records targets and open streams. */
class LoopDialer extends FakeTunnel {
  constructor(readonly port: number) {
    super(() => port, () => true);
  }
}

function serve(handler: (req: Request) => Response | Promise<Response>) {
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return Object.assign(s, { port: s.addr.port });
}

const target = { node: "b1", hostname: "198.18.2.11", port: 51005 };

Deno.test("tunnelFetch: POST with Content-Length and a chunked reply over a dialed stream", async () => {
  const s = serve(async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    const echo = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(`${req.method} ${new URL(req.url).pathname} `));
        c.enqueue(body);
        c.close();
      },
    });
    return new Response(echo, { status: 201 });
  });
  const d = new LoopDialer(s.port);
  try {
    const res = await tunnelFetch(d, target, {
      method: "POST",
      path: "/v1/exchange",
      body: new TextEncoder().encode("x".repeat(100_000)),
    }, { timeoutMs: 2000, maxBody: 1 << 20 });
    assertEquals(res.status, 201);
    assertEquals(new TextDecoder().decode(res.body), `POST /v1/exchange ${"x".repeat(100_000)}`);
    assertEquals(res.path, "tunnel-relay");
    assertEquals(res.relay, "r1");
    assertEquals(d.dials, [{ protocol: "tcp", node: "b1", ip: "198.18.2.11", port: 51005 }]);
    assertEquals(d.open, 0);
  } finally {
    await s.shutdown();
  }
});

Deno.test("tunnelFetch: a GET answered with Content-Length", async () => {
  const s = serve(() => Response.json({ node: "b1" }));
  const d = new LoopDialer(s.port);
  try {
    const res = await tunnelFetch(d, target, { method: "GET", path: "/healthz" }, {
      timeoutMs: 2000,
      maxBody: 8192,
    });
    assertEquals(res.status, 200);
    assertEquals(JSON.parse(new TextDecoder().decode(res.body)), { node: "b1" });
    assertEquals(d.open, 0);
  } finally {
    await s.shutdown();
  }
});

Deno.test("tunnelFetch: an oversized answer is refused and the stream closed", async () => {
  const s = serve(() => new Response(new Uint8Array(64 * 1024)));
  const d = new LoopDialer(s.port);
  try {
    await rejects(
      tunnelFetch(d, target, { method: "GET", path: "/healthz" }, {
        timeoutMs: 2000,
        maxBody: 1024,
      }),
      (e) => e instanceof HealthTunnelError && e.code === "too-large",
    );
    assertEquals(d.open, 0);
  } finally {
    await s.shutdown();
  }
});

Deno.test("tunnelFetch: a silent peer times out; garbage is malformed; DialError passes through", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of l) {
      held.push(c);
      // The second connection gets garbage, the first nothing at all.
      if (held.length === 2) await c.write(new TextEncoder().encode("SSH-2.0-OpenSSH\r\n\r\n"));
    }
  })();
  const d = new LoopDialer(l.addr.port);
  try {
    const t0 = performance.now();
    await rejects(
      tunnelFetch(d, target, { method: "GET", path: "/healthz" }, {
        timeoutMs: 150,
        maxBody: 1024,
      }),
      (e) => e instanceof HealthTunnelError && e.code === "timeout",
    );
    assert(performance.now() - t0 < 1000);
    await rejects(
      tunnelFetch(d, target, { method: "GET", path: "/healthz" }, {
        timeoutMs: 1000,
        maxBody: 1024,
      }),
      (e) => e instanceof HealthTunnelError && e.code === "malformed",
    );
    assertEquals(d.open, 0);
    const failing: Dialer = {
      dialStream: (t) => Promise.reject(new DialError("unreachable", t, "no route to b1")),
      dialDatagram: () => Promise.reject(new Error("not used")),
    };
    await rejects(
      tunnelFetch(failing, target, { method: "GET", path: "/healthz" }, {
        timeoutMs: 1000,
        maxBody: 1024,
      }),
      (e) => e instanceof DialError && e.code === "unreachable",
    );
    // A dialer that never answers is cut by the deadline too.
    const hanging: Dialer = {
      dialStream: () => new Promise<never>(() => {}),
      dialDatagram: () => Promise.reject(new Error("not used")),
    };
    await rejects(
      tunnelFetch(hanging, target, { method: "GET", path: "/healthz" }, {
        timeoutMs: 100,
        maxBody: 1024,
      }),
      (e) => e instanceof HealthTunnelError && e.code === "timeout",
    );
  } finally {
    l.close();
    await accepting.catch(() => {});
    for (const c of held) c.close();
  }
});
