/**
 * Health across a group whose members cannot all reach each other directly:
 *
 *   LAN A: a1, a2        LAN B: b1, b2        (one group "*", 4 members, majority 3)
 *
 * Every agent listens on 127.0.0.1 (port 0). Inside a LAN, `resolveAddress` gives the real
 * port; across LANs it gives a closed port (the direct path is dead). A fake Dialer plays the
 * tunnel: it routes by node name to the member's real server, and — like the receiving
 * tunnel's LocalTargets — only delivers to the address and port that member advertises.
 * Without the tunnel each member would get 2 "ok" and 2 "fail": no majority, never decided.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Dialer, DialTarget } from "../contracts/mod.ts";
import { DialError } from "../contracts/mod.ts";
import { ClusterStore, type Node } from "../kube/mod.ts";
import { memoryLogger, nullLogger } from "../log/mod.ts";
import { LogRateLimiter } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { FakeTunnel } from "./test_dialer.ts";
import { Gossip } from "./gossip.ts";
import { groupHash } from "./groups.ts";
import { Health } from "./health.ts";
import { generateIdentity } from "./identity.ts";
import { DigestInbox } from "./inbox.ts";
import { KeyPins } from "./key_pins.ts";
import { healthMetrics } from "./metrics.ts";

const PERIOD = 200;

function node(name: string): Node {
  return {
    metadata: { name, labels: {}, annotations: {}, resourceVersion: "1" },
    spec: { taints: [] },
    status: {
      addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
      conditions: [{ type: "Ready", status: "True" }],
    },
  };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

/** A port nothing listens on (bound, then closed). */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

const LAN: Record<string, string> = { a1: "A", a2: "A", b1: "B", b2: "B" };

Deno.test("Health over the tunnel: two LANs that only meet through a relay still agree, and a stopped member is voted unhealthy", async () => {
  const names = Object.keys(LAN);
  const store = new ClusterStore();
  for (const n of names) store.upsert("nodes", node(n));
  // Where each member is "seen from afar": a dead port standing for its LAN address.
  const farPort = new Map(names.map((n) => [n, closedPort()]));
  const ports = new Map<string, number>();
  const agents = new Map<string, Health>();
  const registries = new Map<string, Registry>();
  const tunnels = new Map<string, FakeTunnel>();
  const ctl = new AbortController();
  for (const name of names) {
    registries.set(name, new Registry());
    const tunnel = new FakeTunnel(
      (n) => ports.get(n),
      (n, ip, port) => ip === "127.0.0.1" && port === farPort.get(n),
    );
    tunnels.set(name, tunnel);
    agents.set(
      name,
      new Health({
        logger: nullLogger(),
        metrics: registries.get(name)!,
        store,
        identity: await generateIdentity(),
        writer: { patchNodeAnnotations: () => Promise.resolve() },
        resolveAddress: (n) => {
          if (LAN[n] !== LAN[name]) return { hostname: "127.0.0.1", port: farPort.get(n)! };
          return ports.has(n) ? { hostname: "127.0.0.1", port: ports.get(n)! } : undefined;
        },
        dialer: tunnel,
      }, {
        nodeName: name,
        listenAddress: "127.0.0.1",
        listenPort: 0,
        probeIntervalMs: PERIOD,
        probeTimeoutMs: 150,
        probeRetries: 1,
        voteTimeoutMs: 3 * PERIOD,
      }),
    );
  }
  try {
    for (const [name, h] of agents) {
      await h.start(ctl.signal);
      ports.set(name, h.port);
    }
    const ms = await waitFor(
      "every agent to see 4 healthy nodes",
      () => [...agents.values()].every((h) => names.every((n) => h.verdict(n) === "healthy")),
      5_000,
    );
    console.log(`4 members across 2 LANs agree on "healthy" after ${Math.round(ms)} ms`);
    // (Agents started one after the other: a1's first round may have missed later ones.)
    await waitFor(
      "a1's own probes to reach everyone",
      () => agents.get("a1")!.status().members.every((m) => m.probe === "ok"),
      5 * PERIOD,
    );
    const st = agents.get("a1")!.status();
    const byNode = new Map(st.members.map((m) => [m.node, m]));
    assertEquals(
      ["a1", "a2", "b1", "b2"].map((n) => [byNode.get(n)!.probe, byNode.get(n)!.probePath]),
      [["ok", null], ["ok", "direct"], ["ok", "tunnel"], ["ok", "tunnel"]],
    );
    // Each vote for a member counted at least 3 "ok": digests crossed the relay.
    assert(st.members.every((m) => m.healthy >= 3), JSON.stringify(st.members));
    assertEquals(st.writer, "a1");

    const m = healthMetrics(registries.get("b1")!);
    // Each round pushes to a few peers picked at random: both paths show within some rounds.
    await waitFor(
      "b1 to exchange over the tunnel and with b2 directly",
      () =>
        m.exchanges.get({ result: "ok", path: "tunnel" }) > 0 &&
        m.exchanges.get({ result: "ok", path: "direct" }) > 0,
      10 * PERIOD,
    );
    assert(m.probes.get({ result: "ok", path: "tunnel" }) > 0);
    // The tunnel is only asked for the members of the other LAN, at their own address.
    const t = tunnels.get("b1")!;
    assert(t.dials.length > 0);
    for (const d of t.dials) {
      assert(LAN[d.node] === "A", `b1 tunneled to ${d.node}`);
      assertEquals([d.protocol, d.ip, d.port], ["tcp", "127.0.0.1", farPort.get(d.node)]);
    }

    // Stop b2: its LAN peer and the other LAN (through the tunnel) vote it unhealthy.
    await agents.get("b2")!.stop();
    const others = ["a1", "a2", "b1"].map((n) => agents.get(n)!);
    const gone = await waitFor(
      "b2 voted unhealthy",
      () => others.every((h) => h.verdict("b2") === "unhealthy"),
      5 * PERIOD,
    );
    console.log(`b2 voted unhealthy ${Math.round(gone)} ms after it stopped`);
    assert(others.every((h) => ["a1", "a2", "b1"].every((n) => h.verdict(n) === "healthy")));
  } finally {
    await Promise.all([...agents.values()].map((h) => h.stop()));
  }
  for (const [name, t] of tunnels) assertEquals(t.open, 0, `${name} left tunnel streams open`);
});

Deno.test("Health over the tunnel: a dialer that fails (DialError) or hangs is contained", async () => {
  const store = new ClusterStore();
  for (const n of ["a1", "b1"]) store.upsert("nodes", node(n));
  const dead = closedPort();
  const logs = memoryLogger("warn");
  const dials: DialTarget[] = [];
  const failing: Dialer = {
    dialStream: (t) => {
      dials.push(t);
      // b1 is not connected to the tunnel at all; a1 is "connecting" forever.
      return t.node === "b1"
        ? Promise.reject(new DialError("unreachable", t, "no route"))
        : new Promise<never>(() => {});
    },
    dialDatagram: () => Promise.reject(new Error("not used")),
  };
  const agents = new Map<string, Health>();
  const registries = new Map<string, Registry>();
  for (const name of ["a1", "b1"]) {
    registries.set(name, new Registry());
    agents.set(
      name,
      new Health({
        logger: logs.logger,
        metrics: registries.get(name)!,
        store,
        identity: await generateIdentity(),
        writer: { patchNodeAnnotations: () => Promise.resolve() },
        resolveAddress: () => ({ hostname: "127.0.0.1", port: dead }),
        dialer: failing,
      }, {
        nodeName: name,
        listenAddress: "127.0.0.1",
        listenPort: 0,
        probeIntervalMs: PERIOD,
        probeTimeoutMs: 100,
        probeRetries: 1,
        voteTimeoutMs: 3 * PERIOD,
      }),
    );
  }
  const ctl = new AbortController();
  try {
    for (const h of agents.values()) await h.start(ctl.signal);
    const probes = (n: string) => healthMetrics(registries.get(n)!).probes;
    await waitFor(
      "three failed rounds on each side",
      () => ["a1", "b1"].every((n) => probes(n).get({ result: "fail", path: "tunnel" }) >= 3),
      5_000,
    );
    for (const [name, h] of agents) {
      const st = h.status();
      assertEquals(st.state, "ready");
      const other = st.members.find((m) => m.node !== name)!;
      assertEquals([other.probe, other.probePath], ["fail", "tunnel"]);
    }
    assert(dials.some((d) => d.node === "a1") && dials.some((d) => d.node === "b1"));
    assertEquals(logs.lines.filter((l) => l.level === "error"), []);
  } finally {
    await Promise.all([...agents.values()].map((h) => h.stop()));
  }
});

Deno.test("Gossip: a direct exchange that fails falls back to the tunnel; a failing tunnel is counted, not thrown", async () => {
  const group = { name: "*", members: ["a1", "b1"] };
  const hash = await groupHash(group);
  const pins = new KeyPins("");
  await pins.load();
  const inbox = new DigestInbox({ pins, now: Date.now }, { voteTimeoutMs: 600 });
  inbox.setGroup(group, hash);
  const registry = new Registry();
  const metrics = healthMetrics(registry);
  const dials: DialTarget[] = [];
  const gossip = new Gossip({
    inbox,
    metrics,
    log: nullLogger(),
    limiter: new LogRateLimiter(),
    onAccepted: () => {},
    dialer: {
      dialStream: (t) => {
        dials.push(t);
        return Promise.reject(new DialError("unreachable", t, "no route"));
      },
      dialDatagram: () => Promise.reject(new Error("not used")),
    },
  });
  gossip.open();
  try {
    const dead = closedPort();
    const signal = new AbortController().signal;
    const opts = { hash, timeoutMs: 200, budgetMs: 2_000, signal, current: () => true };
    await gossip.exchange(
      [
        { node: "b1", addr: { hostname: "127.0.0.1", port: dead }, path: "direct" },
      ],
      new Uint8Array(),
      opts,
    );
    assertEquals(metrics.exchanges.get({ result: "unreachable", path: "direct" }), 1);
    assertEquals(metrics.exchanges.get({ result: "unreachable", path: "tunnel" }), 1);
    assertEquals(dials, [{ protocol: "tcp", node: "b1", ip: "127.0.0.1", port: dead }]);
    // A peer last reached through the tunnel skips the direct attempt.
    await gossip.exchange(
      [
        { node: "b1", addr: { hostname: "127.0.0.1", port: dead }, path: "tunnel" },
      ],
      new Uint8Array(),
      opts,
    );
    assertEquals(metrics.exchanges.get({ result: "unreachable", path: "direct" }), 1);
    assertEquals(metrics.exchanges.get({ result: "unreachable", path: "tunnel" }), 2);
  } finally {
    gossip.close();
  }
});
