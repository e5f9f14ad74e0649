import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DialError } from "../contracts/mod.ts";
import {
  type Agent,
  echoOnce,
  hostPort,
  readN,
  spawnRelay,
  startAgent,
  tcpEcho,
  tcpForwarder,
  udpEcho,
  waitFor,
} from "./test_util.ts";

const NODES = new Set(["r1", "r2", "a", "b", "c"]);
const enc = new TextEncoder();

/** A and B cannot reach each other directly (as across two NATs); both reach the relays. */
function natBetween(...ips: string[]) {
  return { denyDialAddress: (ma: string) => ips.some((ip) => ma.startsWith(`/ip4/${ip}/`)) };
}

/**
 * Relays r1..rN on 127.0.1.i; agents a (127.0.2.1) and b (127.0.2.2) that cannot dial each
 * other. With `forwarders`, a reaches relay i through a TCP forwarder adding `delays[i]` ms.
 */
async function relayedPair(t: { relays: number; forwarders?: boolean; delays?: number[] }) {
  const agents: Agent[] = [];
  const relays: Agent[] = [];
  for (let i = 1; i <= t.relays; i++) {
    relays.push(
      await startAgent({
        name: `r${i}`,
        ip: `127.0.1.${i}`,
        known: NODES,
        relayNodes: [{ nodeName: `r${i}`, advertiseAddress: [] }],
      }),
    );
  }
  agents.push(...relays);
  const relayNodes = relays.map((r) => ({ nodeName: r.name, advertiseAddress: [r.addr] }));
  const echo = tcpEcho();
  const uecho = udpEcho();
  const fwd = t.forwarders
    ? relays.map((r, i) => tcpForwarder(`127.0.3.${i + 1}`, hostPort(r.addr), t.delays?.[i] ?? 0))
    : [];
  const aRelays = t.forwarders
    ? relays.map((r, i) => ({ nodeName: r.name, advertiseAddress: [fwd[i].addr] }))
    : relayNodes;
  const a = await startAgent({
    name: "a",
    ip: "127.0.2.1",
    known: NODES,
    relayNodes: aRelays,
    hooks: natBetween("127.0.2.2"),
  });
  agents.push(a);
  const b = await startAgent({
    name: "b",
    ip: "127.0.2.2",
    known: NODES,
    relayNodes,
    hooks: natBetween("127.0.2.1"),
    allow: (ip, port, proto) =>
      ip === "127.0.0.1" && port === (proto === "tcp" ? echo.port : uecho.port),
  });
  agents.push(b);
  const reserved = (x: Agent, n: number) =>
    x.tunnel.snapshot().relays.filter((r) => r.reserved).length >= n;
  await waitFor(
    () => reserved(a, Math.min(2, t.relays)) && reserved(b, Math.min(2, t.relays)),
    8000,
    "reservations",
  );
  return {
    relays,
    a,
    b,
    echo,
    uecho,
    fwd,
    async close() {
      await Promise.all(agents.map((x) => x.stop()));
      await Promise.all(fwd.map((f) => f.close()));
      await echo.close();
      await uecho.close();
    },
  };
}

Deno.test("a TCP stream and a UDP channel cross a relay when peers cannot reach each other", async () => {
  const net = await relayedPair({ relays: 1 });
  try {
    const s = await net.a.tunnel.dialStream({
      node: "b",
      ip: "127.0.0.1",
      port: net.echo.port,
      protocol: "tcp",
    });
    assertEquals(s.path, "tunnel-relay");
    assertEquals(s.relay, "r1");
    const w = s.writable.getWriter();
    const r = s.readable.getReader();
    await w.write(enc.encode("hello through the relay"));
    assertEquals(new TextDecoder().decode(await readN(r, 23)), "hello through the relay");
    await w.close();
    assertEquals((await r.read()).done, true);
    s.close();

    const u = await net.a.tunnel.dialDatagram({
      node: "b",
      ip: "127.0.0.1",
      port: net.uecho.port,
      protocol: "udp",
    });
    assertEquals(u.path, "tunnel-relay");
    for (const size of [1, 1200, 9000]) {
      const d = crypto.getRandomValues(new Uint8Array(size));
      await u.send(d);
      assertEquals(Uint8Array.from((await u.receive())!), d);
    }
    u.close();
  } finally {
    await net.close();
  }
});

Deno.test("the receiver refuses a target that is not one of its local endpoints", async () => {
  const net = await relayedPair({ relays: 1 });
  try {
    const err = await net.a.tunnel.dialStream({
      node: "b",
      ip: "127.0.0.1",
      port: 1,
      protocol: "tcp",
    })
      .then(() => undefined, (e) => e);
    assert(err instanceof DialError, String(err));
    assertEquals(err.code, "forbidden");
    assertEquals(err.retryable, false);
    const u = await net.a.tunnel.dialDatagram({
      node: "b",
      ip: "127.0.0.2",
      port: net.uecho.port,
      protocol: "udp",
    })
      .then(() => undefined, (e) => e);
    assertEquals(u?.code, "forbidden");
    assertEquals(
      net.b.metrics.counter("edgemesh_tunnel_proxy_rejects_total", "", ["reason"]).get({
        reason: "forbidden",
      }),
      2,
    );
    await waitFor(
      () => net.a.tunnel.openProxyStreams() === 0 && net.b.tunnel.openProxyStreams() === 0,
      3000,
      "streams closed",
    );
  } finally {
    await net.close();
  }
});

Deno.test("a peer with the wrong PSK is refused while one with the right PSK connects", async () => {
  const psk = crypto.getRandomValues(new Uint8Array(32));
  const a = await startAgent({ name: "a", ip: "127.0.4.1", known: NODES, psk });
  const asRelay = [{ nodeName: "a", advertiseAddress: [a.addr] }];
  const good = await startAgent({
    name: "b",
    ip: "127.0.4.2",
    known: NODES,
    psk,
    relayNodes: asRelay,
  });
  const bad = await startAgent({
    name: "c",
    ip: "127.0.4.3",
    known: NODES,
    psk: crypto.getRandomValues(new Uint8Array(32)),
    relayNodes: asRelay,
  });
  try {
    await waitFor(
      () => good.tunnel.snapshot().relays[0]?.rttMs !== null,
      5000,
      "right-PSK peer measured a",
    );
    await waitFor(
      () => bad.tunnel.snapshot().relays[0]?.error !== undefined,
      5000,
      "wrong-PSK peer failed",
    );
    assertEquals(bad.tunnel.snapshot().relays[0].rttMs, null);
    assertEquals(bad.tunnel.snapshot().peers, []);
    const nodes = a.tunnel.snapshot().peers.map((p) => p.node);
    assert(nodes.includes("b") && !nodes.includes("c"), nodes.join(","));
  } finally {
    await Promise.all([a.stop(), good.stop(), bad.stop()]);
  }
});

Deno.test("a peer claiming a node name that is not a cluster node is refused", async () => {
  const a = await startAgent({ name: "a", ip: "127.0.5.1", known: NODES });
  const mallory = await startAgent({
    name: "mallory",
    ip: "127.0.5.2",
    known: new Set([...NODES, "mallory"]),
    bootstrap: [a.full],
  });
  try {
    const refused = a.metrics.counter("edgemesh_tunnel_claims_refused_total", "", ["reason"]);
    await waitFor(() => refused.get({ reason: "unknown-node" }) >= 1, 5000, "refusal");
    await waitFor(() => mallory.tunnel.snapshot().peers.length === 0, 3000, "connection closed");
    assertEquals(a.tunnel.snapshot().peers, []);
    const err = await mallory.tunnel.dialStream({
      node: "a",
      ip: "127.0.0.1",
      port: 9,
      protocol: "tcp",
    }, { timeoutMs: 1000 })
      .then(() => undefined, (e) => e);
    assert(err instanceof DialError && err.retryable, String(err));
  } finally {
    await Promise.all([a.stop(), mallory.stop()]);
  }
});

Deno.test("a killed primary relay is replaced by the standby: a new stream succeeds within 1 s", async () => {
  const net = await relayedPair({ relays: 2 });
  try {
    const view = () => net.a.tunnel.snapshot().relays;
    const primary = view().find((r) => r.role === "primary")!.node;
    const standby = view().find((r) => r.role === "standby")!.node;
    const first = await echoOnce(net.a, net.echo.port, 10_000);
    assertEquals([first.path, first.relay], ["tunnel-relay", primary]);
    const victim = net.relays.find((r) => r.name === primary)!;
    const t0 = performance.now();
    const stopping = victim.tunnel.stop(); // keeps its stateDir for the restart below
    let s;
    for (let i = 0; !s; i++) {
      s = await echoOnce(net.a, net.echo.port, 1000).catch((err) => {
        if (performance.now() - t0 > 1000) throw err;
        return undefined;
      });
    }
    const elapsed = performance.now() - t0;
    console.log(
      `new stream through the standby ${elapsed.toFixed(0)} ms after the primary was stopped`,
    );
    await stopping;
    assertEquals([s.path, s.relay], ["tunnel-relay", standby]);
    assert(elapsed < 1000, `new stream after ${elapsed.toFixed(0)} ms`);
    await waitFor(
      () => view().find((r) => r.node === standby)?.role === "primary",
      2000,
      "standby promoted",
    );

    // The relay comes back (same key, same address): it is reconnected and reserved again.
    const back = await startAgent({
      name: victim.name,
      ip: "",
      known: NODES,
      relayNodes: [{ nodeName: victim.name, advertiseAddress: [] }],
      stateDir: victim.stateDir,
      options: { listenAddresses: [victim.addr] },
    });
    try {
      assertEquals(back.full, victim.full, "same identity and address after restart");
      await waitFor(
        () => {
          const v = view().find((r) => r.node === victim.name);
          // Standby, or primary again when its RTT is now clearly better.
          return v !== undefined && v.role !== "candidate" && v.reserved;
        },
        8000,
        "returning relay reserved again",
      );
    } finally {
      await back.stop();
    }
  } finally {
    await net.close();
  }
});

Deno.test("relays added and removed at run time take effect without a restart; ping reports the path", async () => {
  const r1 = await startAgent({
    name: "r1",
    ip: "127.0.7.1",
    known: NODES,
    relayNodes: [{ nodeName: "r1", advertiseAddress: [] }],
  });
  const echo = tcpEcho();
  const b = await startAgent({
    name: "b",
    ip: "127.0.7.3",
    known: NODES,
    relayNodes: [{ nodeName: "r1", advertiseAddress: [r1.addr] }],
    hooks: natBetween("127.0.7.2"),
    allow: (_ip, port) => port === echo.port,
  });
  const a = await startAgent({
    name: "a",
    ip: "127.0.7.2",
    known: NODES,
    hooks: natBetween("127.0.7.3"),
  });
  try {
    assertEquals(a.tunnel.snapshot().relays, []);
    assertEquals(a.tunnel.status().state, "ready");
    a.tunnel.setRelayNodes([{ nodeName: "r1", advertiseAddress: [r1.addr] }]);
    await waitFor(
      () => a.tunnel.snapshot().relays.some((r) => r.node === "r1" && r.reserved),
      5000,
      "r1 reserved",
    );
    const p = await a.tunnel.ping("b");
    assertEquals([p.path, p.relay], ["tunnel-relay", "r1"]);
    assert(p.rttMs > 0 && p.rttMs < 1000, String(p.rttMs));
    const metrics = a.metrics.render();
    assert(
      metrics.includes('edgemesh_tunnel_relay_reservations{relay="r1",role="primary"} 1'),
      metrics,
    );
    assert(metrics.includes('edgemesh_tunnel_peers{path="tunnel-relay"} 1'), metrics);
    const peer = a.tunnel.snapshot().peers.find((x) => x.node === "b");
    assertEquals([peer?.path, peer?.relay], ["tunnel-relay", "r1"]);
    a.tunnel.setRelayNodes([]);
    assertEquals(a.tunnel.snapshot().relays, []);
  } finally {
    await Promise.all([a.stop(), b.stop(), r1.stop()]);
    await echo.close();
  }
});

Deno.test("the nearest of two relays becomes primary (the other sits behind a 40 ms forwarder)", async () => {
  const net = await relayedPair({ relays: 2, forwarders: true, delays: [40, 0] });
  try {
    const view = Object.fromEntries(net.a.tunnel.snapshot().relays.map((r) => [r.node, r]));
    assertEquals([view.r1.role, view.r2.role], ["standby", "primary"]);
    assert(view.r1.rttMs! >= 80 && view.r2.rttMs! < view.r1.rttMs! / 2, JSON.stringify(view));
    assert(view.r1.reserved && view.r2.reserved);
    const s = await echoOnce(net.a, net.echo.port, 10_000);
    assertEquals([s.path, s.relay], ["tunnel-relay", "r2"]);
  } finally {
    await net.close();
  }
});

Deno.test("a hung primary relay is noticed and a new stream succeeds through the standby within 2 s", async () => {
  const net = await relayedPair({ relays: 2, forwarders: true });
  try {
    const view = () => net.a.tunnel.snapshot().relays;
    const primary = view().find((r) => r.role === "primary")!.node;
    const standby = view().find((r) => r.role === "standby")!.node;
    await echoOnce(net.a, net.echo.port, 10_000);
    const t0 = performance.now();
    net.fwd[Number(primary.slice(1)) - 1].freeze();
    let s;
    while (!s) {
      s = await echoOnce(net.a, net.echo.port, 2000).catch((err) => {
        if (performance.now() - t0 > 2000) throw err;
        return undefined;
      });
    }
    const elapsed = performance.now() - t0;
    console.log(`new stream through the standby ${elapsed.toFixed(0)} ms after the primary hung`);
    assertEquals([s.path, s.relay], ["tunnel-relay", standby]);
    assert(elapsed < 2000, `new stream after ${elapsed.toFixed(0)} ms`);
    // The hung relay itself is noticed (no bytes, no ping answer) and replaced as primary.
    await waitFor(
      () => view().find((r) => r.role === "primary")?.node === standby,
      2500 - elapsed,
      "hung primary dropped",
    );
    console.log(`hung primary dropped ${(performance.now() - t0).toFixed(0)} ms after it hung`);
  } finally {
    await net.close();
  }
});

Deno.test("2,000 short TCP streams and 200 UDP channels leave no stream open on either side", async () => {
  const net = await relayedPair({ relays: 1 });
  const c = await startAgent({
    name: "c",
    ip: "127.0.2.3",
    known: NODES,
    bootstrap: [net.b.full],
    allow: (_ip, port) => port === net.echo.port || port === net.uecho.port,
  });
  try {
    const gauge = (x: Agent, dir: string, proto: string) =>
      x.metrics.gauge("edgemesh_tunnel_streams_open", "", ["direction", "protocol"]).get({
        direction: dir,
        protocol: proto,
      });
    await waitFor(
      () => net.b.tunnel.snapshot().peers.some((p) => p.node === "c"),
      5000,
      "c joined b",
    );
    // 1,500 over the direct connection b → c, 500 through the relay a → b, 16 at a time.
    const run = async (from: Agent, to: string, count: number) => {
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next < count) {
          next++;
          const s = await echoOnce(from, net.echo.port, 5000, to);
          assertEquals(s.path, to === "c" ? "tunnel-direct" : "tunnel-relay");
        }
      }));
    };
    const t0 = performance.now();
    await Promise.all([run(net.b, "c", 1500), run(net.a, "b", 500)]);
    for (let i = 0; i < 200; i++) {
      const u = await net.a.tunnel.dialDatagram({
        node: "b",
        ip: "127.0.0.1",
        port: net.uecho.port,
        protocol: "udp",
      });
      await u.send(enc.encode("x"));
      assert(await u.receive());
      u.close();
    }
    console.log(
      `2,000 TCP streams + 200 UDP channels in ${(performance.now() - t0).toFixed(0)} ms`,
    );
    const all = [net.a, net.b, c];
    await waitFor(
      () => all.every((x) => x.tunnel.openProxyStreams() === 0),
      5000,
      "all proxy streams closed",
    );
    await waitFor(
      () =>
        all.every((x) =>
          ["in", "out"].every((d) => gauge(x, d, "tcp") === 0 && gauge(x, d, "udp") === 0)
        ),
      5000,
      "stream gauges at 0",
    );
  } finally {
    await c.stop();
    await net.close();
  }
});

Deno.test("a relay process killed with SIGKILL is replaced by the standby within 1 s", async () => {
  const known = new Set([...NODES, "rk"]);
  const killed = await spawnRelay("rk", "127.0.10.1", known);
  const r2 = await startAgent({
    name: "r2",
    ip: "127.0.10.2",
    known,
    relayNodes: [{ nodeName: "r2", advertiseAddress: [] }],
  });
  const relayNodes = [{ nodeName: "rk", advertiseAddress: [killed.addr] }, {
    nodeName: "r2",
    advertiseAddress: [r2.addr],
  }];
  // The child relay is made the nearest by an injected RTT, so that it is the one killed.
  const measureRtt = async (
    node: string,
    measured: () => Promise<number>,
  ) => (node === "rk" ? 1 : 30 + await measured());
  const echo = tcpEcho();
  const b = await startAgent({
    name: "b",
    ip: "127.0.10.4",
    known,
    relayNodes,
    hooks: { ...natBetween("127.0.10.3"), measureRtt },
    allow: (_ip, port) => port === echo.port,
  });
  const a = await startAgent({
    name: "a",
    ip: "127.0.10.3",
    known,
    relayNodes,
    hooks: { ...natBetween("127.0.10.4"), measureRtt },
  });
  try {
    const both = (x: Agent) => x.tunnel.snapshot().relays.filter((r) => r.reserved).length === 2;
    await waitFor(() => both(a) && both(b), 8000, "reservations on both relays");
    assertEquals(a.tunnel.snapshot().relays.find((r) => r.node === "rk")?.role, "primary");
    const first = await echoOnce(a, echo.port, 10_000);
    assertEquals(first.relay, "rk");
    const t0 = performance.now();
    killed.kill();
    let s;
    while (!s) {
      s = await echoOnce(a, echo.port, 1000).catch((err) => {
        if (performance.now() - t0 > 1000) throw err;
        return undefined;
      });
    }
    const elapsed = performance.now() - t0;
    console.log(
      `new stream through the standby ${elapsed.toFixed(0)} ms after SIGKILL of the primary`,
    );
    assertEquals([s.path, s.relay], ["tunnel-relay", "r2"]);
    assert(elapsed < 1000, `new stream after ${elapsed.toFixed(0)} ms`);
  } finally {
    await Promise.all([a.stop(), b.stop(), r2.stop()]);
    await killed.close();
    await echo.close();
  }
});

Deno.test("a relay forwarding 256 MiB keeps its memory bounded (no per-circuit buffering)", async () => {
  const known = new Set([...NODES, "rm"]);
  const relay = await spawnRelay("rm", "127.0.11.1", known);
  const sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sinkLoop = (async () => {
    for await (const c of sink) {
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        try {
          while ((await c.read(buf)) !== null) { /* discard */ }
        } finally {
          c.close();
        }
      })().catch(() => {});
    }
  })();
  const sinkPort = (sink.addr as Deno.NetAddr).port;
  const relayNodes = [{ nodeName: "rm", advertiseAddress: [relay.addr] }];
  const b = await startAgent({
    name: "b",
    ip: "127.0.11.3",
    known,
    relayNodes,
    hooks: natBetween("127.0.11.2"),
    allow: (_ip, port) => port === sinkPort,
  });
  const a = await startAgent({
    name: "a",
    ip: "127.0.11.2",
    known,
    relayNodes,
    hooks: natBetween("127.0.11.3"),
  });
  try {
    await waitFor(
      () => [a, b].every((x) => x.tunnel.snapshot().relays[0]?.reserved),
      8000,
      "reservations",
    );
    const before = await relay.memory();
    const s = await a.tunnel.dialStream({
      node: "b",
      ip: "127.0.0.1",
      port: sinkPort,
      protocol: "tcp",
    });
    assertEquals(s.path, "tunnel-relay");
    const w = s.writable.getWriter();
    const total = 256 << 20;
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += 256 << 10) await w.write(new Uint8Array(256 << 10));
    await w.close();
    assertEquals((await s.readable.getReader().read()).done, true);
    const secs = (performance.now() - t0) / 1000;
    s.close();
    // V8 frees array buffers lazily: the least of a few readings after GC is the honest one.
    let after = await relay.memory();
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const m = await relay.memory();
      if (m.external < after.external) after = m;
    }
    const mib = (n: number) => (n / (1 << 20)).toFixed(0);
    console.log(
      `relayed ${(total / secs / 1e6).toFixed(0)} MB/s; relay external ${mib(before.external)} → ${
        mib(after.external)
      } MiB, ` +
        `rss ${mib(before.rss)} → ${mib(after.rss)} MiB`,
    );
    // The library's relay kept ~all forwarded bytes (≥ 256 MiB here) for the circuit's life.
    assert(
      after.external - before.external < 128 << 20,
      `relay holds ${mib(after.external)} MiB after forwarding`,
    );
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await relay.close();
    sink.close();
    await sinkLoop.catch(() => {});
  }
});

Deno.test("a node name pinned to one key is refused when another key claims it", async () => {
  const a = await startAgent({ name: "a", ip: "127.0.14.1", known: NODES });
  const b1 = await startAgent({ name: "b", ip: "127.0.14.2", known: NODES, bootstrap: [a.full] });
  try {
    await waitFor(
      () => a.tunnel.snapshot().peers.some((p) => p.node === "b"),
      5000,
      "b pinned by a",
    );
    const pinned = a.tunnel.peerIdOf("b");
    assertEquals(pinned, b1.tunnel.peerId);
    await b1.stop();
    const b2 = await startAgent({ name: "b", ip: "127.0.14.3", known: NODES, bootstrap: [a.full] });
    try {
      const refused = a.metrics.counter("edgemesh_tunnel_claims_refused_total", "", ["reason"]);
      await waitFor(() => refused.get({ reason: "conflict" }) >= 1, 5000, "conflict refusal");
      assertEquals(a.tunnel.peerIdOf("b"), pinned);
      const pins = JSON.parse(await Deno.readTextFile(`${a.stateDir}/tunnel-pins.json`));
      assertEquals([pins.version, pins.pins.b], [1, pinned]);
    } finally {
      await b2.stop();
    }
  } finally {
    await Promise.all([a.stop(), b1.stop()]);
  }
});

Deno.test("relayOnly carries streams through a relay even when the peers could connect directly", async () => {
  const relay = await startAgent({
    name: "r1",
    ip: "127.0.8.1",
    known: NODES,
    relayNodes: [{ nodeName: "r1", advertiseAddress: [] }],
  });
  const relayNodes = [{ nodeName: "r1", advertiseAddress: [relay.addr] }];
  const echo = tcpEcho();
  const b = await startAgent({
    name: "b",
    ip: "127.0.8.3",
    known: NODES,
    relayNodes,
    allow: (ip, port) => ip === "127.0.0.1" && port === echo.port,
  });
  const a = await startAgent({
    name: "a",
    ip: "127.0.8.2",
    known: NODES,
    relayNodes,
    // a even knows b's direct address, and is connected to it.
    bootstrap: [b.tunnel.multiaddrs()[0]],
    options: { relayOnly: true },
  });
  try {
    await waitFor(
      () => [a, b].every((x) => x.tunnel.snapshot().relays.some((r) => r.reserved)),
      8000,
      "reservations",
    );
    const s = await a.tunnel.dialStream({
      node: "b",
      ip: "127.0.0.1",
      port: echo.port,
      protocol: "tcp",
    });
    assertEquals(s.path, "tunnel-relay");
    assertEquals(s.relay, "r1");
    s.close();
    // Without relayOnly, a peer in the same place connects directly.
    const c = await startAgent({
      name: "c",
      ip: "127.0.8.4",
      known: NODES,
      relayNodes,
      bootstrap: [b.tunnel.multiaddrs()[0]],
    });
    try {
      await waitFor(() => !!c.tunnel.peerIdOf("b"), 8000, "c to learn b's claim");
      const d = await c.tunnel.dialStream({
        node: "b",
        ip: "127.0.0.1",
        port: echo.port,
        protocol: "tcp",
      });
      assertEquals(d.path, "tunnel-direct");
      d.close();
    } finally {
      await c.stop();
    }
  } finally {
    await Promise.all([a.stop(), b.stop(), relay.stop()]);
    await echo.close();
  }
});
