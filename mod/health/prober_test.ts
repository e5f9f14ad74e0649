import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
} from "node:assert/strict";
import { probe, probeMany } from "./prober.ts";

async function withServer(
  handler: (req: Request) => Response,
  fn: (port: number) => Promise<void>,
) {
  const ctl = new AbortController();
  const { promise, resolve } = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ctl.signal,
    onListen: resolve,
  }, handler);
  try {
    await fn((await promise).port);
  } finally {
    ctl.abort();
    await server.finished;
  }
}

/** Accepts TCP connections and never answers. */
async function withSilentServer(fn: (port: number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) conns.push(c);
  })();
  try {
    await fn(listener.addr.port);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const c of conns) c.close();
  }
}

const opts = { timeoutMs: 300, retries: 0 };

Deno.test("probe() succeeds against the named node's health endpoint", async () => {
  await withServer(() => Response.json({ node: "n1" }), async (port) => {
    assertEquals((await probe({ node: "n1", hostname: "127.0.0.1", port }, opts)).ok, true);
    const wrong = await probe({ node: "n2", hostname: "127.0.0.1", port }, {
      timeoutMs: 300,
      retries: 1,
    });
    assertEquals([wrong.ok, wrong.attempts], [false, 2]);
    assert(wrong.error?.includes(`belongs to node "n1"`), wrong.error ?? "");
  });
});

Deno.test("probe() fails on a refused port, a silent peer and a closed kubelet port", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = l.addr.port;
  l.close();
  assertEquals(
    (await probe({ node: "x", hostname: "127.0.0.1", port: closedPort }, opts)).ok,
    false,
  );
  await withSilentServer(async (port) => {
    const t0 = performance.now();
    const out = await probe({ node: "x", hostname: "127.0.0.1", port }, {
      timeoutMs: 150,
      retries: 0,
    });
    assertEquals(out.ok, false);
    assert(out.error?.includes("timed out"), out.error ?? "");
    assert(performance.now() - t0 < 1000);
  });
  await withServer(() => Response.json({ node: "n1" }), async (port) => {
    const out = await probe(
      { node: "n1", hostname: "127.0.0.1", port, kubeletPort: closedPort },
      opts,
    );
    assertEquals(out.ok, false);
  });
});

Deno.test("probeMany() stops on abort and leaves no connection behind", async () => {
  await withSilentServer(async (port) => {
    const ctl = new AbortController();
    const targets = Array.from(
      { length: 6 },
      (_, i) => ({ node: `n${i}`, hostname: "127.0.0.1", port }),
    );
    const seen: string[] = [];
    setTimeout(() => ctl.abort(new Error("stop")), 50);
    await assertRejects(
      probeMany(
        targets,
        { timeoutMs: 5_000, retries: 0, concurrency: 2, signal: ctl.signal },
        (t) => seen.push(t.node),
      ),
    );
    assertEquals(seen, []);
  });
});
