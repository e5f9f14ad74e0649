import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import type { Connection, Stream } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { WireError } from "./errors.ts";
import { tunnelMetrics } from "./metrics.ts";
import type { Membership } from "./membership.ts";
import { HolePuncher, PUNCH_DEFAULTS, tcpAddrOf } from "./punch.ts";
import { connectBurst } from "./punch_socket.ts";
import {
  decodePunch,
  encodePunch,
  MAX_PUNCH_ADDRS,
  MAX_PUNCH_BODY,
  type PunchMessage,
} from "./punch_wire.ts";
import { TaskSet } from "./tasks.ts";
import { type Agent, startAgent, waitFor } from "./test_util.ts";

Deno.test("punch messages round-trip through encodePunch/decodePunch", () => {
  const cases: PunchMessage[] = [
    { type: "observe" },
    { type: "ping" },
    { type: "pong" },
    { type: "sync" },
    { type: "observed", addr: { ip: "198.18.0.21", port: 40001 } },
    { type: "connect", addrs: [{ ip: "10.0.0.1", port: 1 }] },
    {
      type: "connect",
      addrs: Array.from(
        { length: MAX_PUNCH_ADDRS },
        (_, i) => ({ ip: `192.168.1.${i}`, port: 65535 }),
      ),
    },
    { type: "refuse", reason: "disabled" },
    { type: "refuse", reason: "busy" },
    { type: "refuse", reason: "no-address" },
  ];
  for (const m of cases) {
    const b = encodePunch(m);
    ok(b.length <= 3 + MAX_PUNCH_BODY, `${m.type}: ${b.length} bytes`);
    deepStrictEqual(decodePunch(b), m);
  }
});

Deno.test("encodePunch refuses what the wire cannot carry", () => {
  const bad: PunchMessage[] = [
    { type: "connect", addrs: [] },
    {
      type: "connect",
      addrs: Array.from({ length: MAX_PUNCH_ADDRS + 1 }, () => ({ ip: "1.2.3.4", port: 5 })),
    },
    { type: "observed", addr: { ip: "::1", port: 5 } },
    { type: "observed", addr: { ip: "1.2.3.4", port: 0 } },
    { type: "observed", addr: { ip: "1.2.3.4", port: 70000 } },
    { type: "observed", addr: { ip: "300.1.1.1", port: 5 } },
  ];
  for (const m of bad) throws(() => encodePunch(m), WireError, JSON.stringify(m));
});

Deno.test("decodePunch rejects bad versions, types, sizes and bodies", () => {
  const addr = [4, 198, 18, 0, 21, 0x9c, 0x41];
  const bad: [string, number[]][] = [
    ["empty", []],
    ["short prefix", [1, 1]],
    ["version 0", [0, 1, 0]],
    ["version 2", [2, 1, 0]],
    ["type 0", [1, 0, 0]],
    ["type 8", [1, 8, 0]],
    ["body over the bound", [1, 3, MAX_PUNCH_BODY + 1, ...new Array(MAX_PUNCH_BODY + 1).fill(0)]],
    ["length beyond the bytes", [1, 2, 7, 4, 1, 2]],
    ["bytes beyond the length", [1, 1, 0, 9]],
    ["observe with a body", [1, 1, 1, 0]],
    ["observed of the wrong size", [1, 2, 6, 4, 1, 2, 3, 4, 0]],
    ["observed with family 6", [1, 2, 7, 6, 1, 2, 3, 4, 0, 1]],
    ["observed with port 0", [1, 2, 7, 4, 1, 2, 3, 4, 0, 0]],
    ["connect with no address", [1, 3, 1, 0]],
    ["connect with too many", [1, 3, 1, MAX_PUNCH_ADDRS + 1]],
    ["connect count and bytes differ", [1, 3, 8, 2, ...addr]],
    ["refuse without reason", [1, 7, 0]],
    ["refuse with reason 0", [1, 7, 1, 0]],
    ["refuse with unknown reason", [1, 7, 1, 9]],
  ];
  for (const [what, bytes] of bad) {
    throws(() => decodePunch(new Uint8Array(bytes)), WireError, what);
  }
});

/** Just enough of a libp2p Stream for the handler: inbound bytes are pushed by the test. */
class FakeStream extends EventTarget {
  status = "open";
  readableEnded = false;
  sent: Uint8Array[] = [];
  abortedWith?: Error;
  send(d: Uint8Array): boolean {
    this.sent.push(d);
    return true;
  }
  close(): Promise<void> {
    if (this.status === "open") this.status = "closed";
    return Promise.resolve();
  }
  abort(err: Error): void {
    this.abortedWith = err;
    this.status = "aborted";
    this.dispatchEvent(Object.assign(new Event("close"), { error: err }));
  }
  pause() {}
  resume() {}
  push(bytes: number[] | Uint8Array): void {
    this.dispatchEvent(Object.assign(new Event("message"), { data: Uint8Array.from(bytes) }));
  }
}

const PEER = "12D3KooWCEnDqtTt124LCFyDDujGWmsFQGbubhwG99YC4WTayPWa";

function fakeConn(addr: string): Connection {
  return {
    remoteAddr: multiaddr(addr),
    remotePeer: { toString: () => PEER },
  } as unknown as Connection;
}

function puncher(enabled: boolean) {
  const shutdown = new AbortController();
  const tasks = new TaskSet();
  const p = new HolePuncher({
    node: { getConnections: () => [] } as never,
    membership: { dir: { nodeOf: () => "b" } } as unknown as Membership,
    logger: nullLogger(),
    metrics: tunnelMetrics(new Registry()),
    tasks,
    shutdown: shutdown.signal,
    selfId: "x",
    enabled,
  }, PUNCH_DEFAULTS);
  return { p, shutdown };
}

async function serve(enabled: boolean, conn: Connection, input: number[]): Promise<FakeStream> {
  const { p, shutdown } = puncher(enabled);
  const s = new FakeStream();
  const done = p.handle(s as unknown as Stream, conn);
  s.push(input);
  await done;
  p.stop();
  shutdown.abort();
  return s;
}

Deno.test("the punch handler answers OBSERVE with the address a direct connection comes from", async () => {
  const s = await serve(false, fakeConn(`/ip4/198.18.0.21/tcp/40001/p2p/${PEER}`), [1, 1, 0]);
  deepStrictEqual(decodePunch(s.sent[0]), {
    type: "observed",
    addr: { ip: "198.18.0.21", port: 40001 },
  });
  equal(s.abortedWith, undefined);
  // Over a relayed connection there is no address to report.
  const r = await serve(
    true,
    fakeConn(`/ip4/198.18.0.11/tcp/20006/p2p/${PEER}/p2p-circuit/p2p/${PEER}`),
    [1, 1, 0],
  );
  deepStrictEqual(decodePunch(r.sent[0]), { type: "refuse", reason: "no-address" });
});

Deno.test("the punch handler refuses CONNECT when hole punching is disabled", async () => {
  const connect = [...encodePunch({ type: "connect", addrs: [{ ip: "198.18.0.22", port: 9 }] })];
  const s = await serve(false, fakeConn(`/ip4/198.18.0.11/tcp/1/p2p/${PEER}`), connect);
  deepStrictEqual(decodePunch(s.sent[0]), { type: "refuse", reason: "disabled" });
});

Deno.test("the punch handler resets the stream on bad input and never answers it", async () => {
  const conn = fakeConn(`/ip4/198.18.0.21/tcp/40001/p2p/${PEER}`);
  for (
    const input of [
      [9, 1, 0], // version
      [1, 99, 0], // type
      [1, 3, 250], // body length over the bound
      [1, 4, 0], // PING before CONNECT
      [1, 2, 7, 4, 1, 2, 3, 4, 0, 1], // OBSERVED is an answer, not a request
    ]
  ) {
    const s = await serve(true, conn, input);
    ok(s.abortedWith instanceof WireError, `${input}: ${s.abortedWith}`);
    deepStrictEqual(s.sent, [], `${input}: nothing sent`);
  }
});

Deno.test("the punch handler stops waiting for a partial message at shutdown", async () => {
  const { p, shutdown } = puncher(true);
  const s = new FakeStream();
  const t0 = performance.now();
  // Two bytes of a prefix, then silence (the 5 s exchange bound also ends this wait).
  const done = p.handle(s as unknown as Stream, fakeConn(`/ip4/198.18.0.21/tcp/1/p2p/${PEER}`));
  s.push([1, 1]);
  setTimeout(() => shutdown.abort(), 50);
  await done;
  ok(performance.now() - t0 < 2000);
  deepStrictEqual(s.sent, []);
  p.stop();
});

Deno.test("tcpAddrOf reads direct TCP addresses and refuses circuits", () => {
  deepStrictEqual(tcpAddrOf(fakeConn(`/ip4/10.1.2.3/tcp/5/p2p/${PEER}`)), {
    ip: "10.1.2.3",
    port: 5,
  });
  equal(
    tcpAddrOf(fakeConn(`/ip4/10.1.2.3/tcp/5/p2p/${PEER}/p2p-circuit/p2p/${PEER}`)),
    undefined,
  );
});

Deno.test("connectBurst is bounded by its window when every attempt is refused", async () => {
  // A port nothing listens on: every attempt is refused at once.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const t0 = performance.now();
  const r = await connectBurst(
    { ip: "127.0.0.1", port },
    0,
    { windowMs: 300, retryMs: 1 },
    new AbortController().signal,
  );
  const ms = performance.now() - t0;
  equal(r.socket, undefined);
  ok(r.attempts > 1, `${r.attempts} attempts`);
  ok(ms >= 290 && ms < 1500, `${ms} ms`);
  ok((r.errors.ECONNREFUSED ?? 0) > 0, JSON.stringify(r.errors));
});

const NODES = new Set(["r1", "a", "b"]);

/** Relay r1 on 127.0.1.1; a and b (127.0.2.x) that cannot dial each other through libp2p. */
async function punchPair(enableHolePunch: boolean): Promise<Agent[]> {
  const agents: Agent[] = [];
  try {
    const r1 = await startAgent({
      name: "r1",
      ip: "127.0.1.1",
      known: NODES,
      relayNodes: [{ nodeName: "r1", advertiseAddress: [] }],
    });
    agents.push(r1);
    const relayNodes = [{ nodeName: "r1", advertiseAddress: [r1.addr] }];
    for (
      const [name, ip, other] of [["a", "127.0.2.1", "127.0.2.2"], ["b", "127.0.2.2", "127.0.2.1"]]
    ) {
      agents.push(
        await startAgent({
          name,
          ip,
          known: NODES,
          relayNodes,
          hooks: { denyDialAddress: (ma) => ma.startsWith(`/ip4/${other}/`) },
          options: { enableHolePunch, holePunchWindowMs: 2000, holePunchBackoffMs: 500 },
        }),
      );
    }
    return agents;
  } catch (err) {
    await Promise.all(agents.map((x) => x.stop()));
    throw err;
  }
}

const peerPath = (x: Agent, node: string) =>
  x.tunnel.snapshot().peers.find((p) => p.node === node)?.path;

// The upgrade itself is proven in tests/e2e/punch_test.ts (two NATs in namespaces): on
// loopback a refused SYN comes back within microseconds, so a simultaneous open practically
// never forms there (13,000 attempts in 2 s, none crossing).

Deno.test("with enableHolePunch false a relayed pair stays relayed (loopback)", async () => {
  const agents = await punchPair(false);
  const [, a, b] = agents;
  try {
    await waitFor(
      () => [a, b].every((x) => x.tunnel.snapshot().relays.some((r) => r.reserved)),
      8000,
      "reservations",
    );
    equal((await a.tunnel.ping("b")).path, "tunnel-relay");
    // Longer than a punch window: a punch, had one started, would have finished.
    const until = performance.now() + 2500;
    while (performance.now() < until) {
      equal(peerPath(a, "b"), "tunnel-relay");
      await new Promise((r) => setTimeout(r, 100));
    }
    ok(!/edgemesh_tunnel_hole_punches_total\{/.test(a.metrics.render() + b.metrics.render()));
  } finally {
    await Promise.all(agents.map((x) => x.stop()));
  }
});
