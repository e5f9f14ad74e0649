/**
 * Upstream keep-alive: the gateway reuses idle HTTP/1.1 connections to an endpoint, and
 * retries on a fresh connection when the upstream closed a pooled one meanwhile.
 *
 *   curl (keep-alive) ──► gateway ──(pooled connections)──► raw HTTP/1.1 backend (counts accepts)
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  curl,
  freePort,
  gateway,
  harness,
  NODE,
  put,
  service,
  slice,
  virtualService,
} from "./support.ts";

/**
 * A minimal HTTP/1.1 server answering "ok" with keep-alive. With `oneAnswerPerConnection`, a
 * second request on a connection is dropped by closing it unanswered: exactly what a pooled
 * connection the upstream timed out looks like to the gateway.
 */
function rawBackend(oneAnswerPerConnection: boolean) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const state = { accepted: 0, requests: 0 };
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const conn of listener) {
      state.accepted++;
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(16 * 1024);
        let pending = "";
        let answered = false;
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            pending += new TextDecoder().decode(buf.subarray(0, n));
            while (pending.includes("\r\n\r\n")) {
              pending = pending.slice(pending.indexOf("\r\n\r\n") + 4);
              if (oneAnswerPerConnection && answered) throw new Error("drop");
              answered = true;
              state.requests++;
              await conn.write(
                new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
              );
            }
          }
        } catch {
          // closing on purpose or peer gone: either way this connection is done
        } finally {
          if (conns.delete(conn)) conn.close();
        }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    state,
    async close() {
      listener.close();
      for (const c of conns) c.close();
      conns.clear();
      await loop;
    },
  };
}

for (const stale of [false, true]) {
  const what = stale
    ? "pooled connections the upstream dropped are retried on fresh ones"
    : "twenty requests share one upstream connection";
  Deno.test(`upstream keep-alive: ${what}`, async () => {
    const be = rawBackend(stale);
    const h = harness();
    const port = freePort();
    try {
      put(
        h.store,
        service("raw"),
        slice("raw", { name: "raw", port: be.port }, NODE),
        gateway("gw", [{ hosts: ["*"], port: { number: port, protocol: "HTTP", name: "http" } }]),
        virtualService("vs", {
          gateways: ["gw"],
          hosts: ["*"],
          http: [{ route: [{ destination: { host: "raw" } }] }],
        }),
      );
      await h.start();
      const urls = Array.from({ length: 20 }, (_, i) => `http://127.0.0.1:${port}/${i}`);
      for (const u of urls) {
        const r = await curl(u);
        assertEquals([r.status, r.body], [200, "ok"], r.stderr);
      }
      assertEquals(be.state.requests, 20);
      if (stale) assertEquals(be.state.accepted, 20);
      else assert(be.state.accepted <= 2, `accepted ${be.state.accepted} connections`);
    } finally {
      await h.close();
      await be.close();
    }
  });
}
