/**
 * Reachability by dial-back and self-offered relays, on loopback: every agent has its own
 * 127.0.x.y address and counts only that address as its LAN (hook), so other agents are
 * "outside"; a NAT is simulated by refusing dials to an agent's address (hook).
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type Agent, echoOnce, startAgent, tcpEcho, waitFor } from "./test_util.ts";

const NODES = new Set(["r1", "r2", "a", "b", "x", "y"]);

/** Hooks for an agent on `ip`: `behindNat` addresses cannot be dialled; `lan` is its LAN. */
function hooks(ip: string, behindNat: string[], lan: string[] = []) {
  return {
    denyDialAddress: (ma: string) => behindNat.some((n) => ma.startsWith(`/ip4/${n}/`)),
    isLocalNetwork: (peer: string) => peer === ip || lan.includes(peer),
  };
}

Deno.test("with no relayNodes, nodes reachable from outside offer relay service; NATed nodes reserve on them and stream through them", async () => {
  const net = "127.0.31";
  const [r1ip, r2ip, aip, bip] = [`${net}.1`, `${net}.2`, `${net}.3`, `${net}.4`];
  const nat = [aip, bip];
  const echo = tcpEcho();
  const agents: Agent[] = [];
  try {
    const r1 = await startAgent({ name: "r1", ip: r1ip, known: NODES, hooks: hooks(r1ip, nat) });
    agents.push(r1);
    const r2 = await startAgent({
      name: "r2",
      ip: r2ip,
      known: NODES,
      hooks: hooks(r2ip, nat),
      bootstrap: [r1.full],
    });
    agents.push(r2);
    const a = await startAgent({
      name: "a",
      ip: aip,
      known: NODES,
      hooks: hooks(aip, [bip]),
      bootstrap: [r1.full, r2.full],
    });
    agents.push(a);
    const b = await startAgent({
      name: "b",
      ip: bip,
      known: NODES,
      hooks: hooks(bip, [aip]),
      bootstrap: [r1.full, r2.full],
      allow: (_ip, port) => port === echo.port,
    });
    agents.push(b);
    const t0 = performance.now();
    for (const r of [r1, r2]) {
      await waitFor(() => r.tunnel.relayState()?.relaying === true, 10_000, `${r.name} relays`);
      assertEquals(r.tunnel.relayState()?.verdict, "reachable");
    }
    console.log(`r1 and r2 relaying ${(performance.now() - t0).toFixed(0)} ms after b started`);
    for (const x of [a, b]) {
      await waitFor(
        () => x.tunnel.relayState()?.verdict === "unreachable",
        10_000,
        `${x.name} unreachable`,
      );
      assertEquals(x.tunnel.relayState()?.relaying, false);
      await waitFor(
        () => {
          const v = x.tunnel.snapshot().relays;
          return ["r1", "r2"].every((n) => v.some((r) => r.node === n && r.reserved));
        },
        10_000,
        `${x.name} reserved r1 and r2`,
      );
    }
    console.log(`a and b reserved both ${(performance.now() - t0).toFixed(0)} ms after start`);
    const s = await echoOnce(a, echo.port, 5000, "b");
    assertEquals(s.path, "tunnel-relay");
    assert(s.relay === "r1" || s.relay === "r2", String(s.relay));
    // Relays never offer themselves to each other as a NATed node's relay: a and b offer nothing.
    assert(!r1.tunnel.snapshot().relays.some((r) => r.node === "a" || r.node === "b"));
  } finally {
    await Promise.all(agents.map((x) => x.stop()));
    await echo.close();
  }
});

Deno.test("a listed relay that is not reachable from outside stops relaying and works as a normal node; others stop using it", async () => {
  const net = "127.0.32";
  const [r1ip, r2ip, xip, yip] = [`${net}.1`, `${net}.2`, `${net}.3`, `${net}.4`];
  const relayNodes = [
    { nodeName: "r1", advertiseAddress: [] as string[] },
    { nodeName: "r2", advertiseAddress: [] as string[] },
    { nodeName: "x", advertiseAddress: [] as string[] },
  ];
  const agents: Agent[] = [];
  try {
    // r1 and r2 cannot dial x (x is behind a NAT); y shares x's LAN and can.
    const r1 = await startAgent({
      name: "r1",
      ip: r1ip,
      known: NODES,
      relayNodes,
      hooks: hooks(r1ip, [xip]),
    });
    agents.push(r1);
    relayNodes[0].advertiseAddress.push(r1.addr);
    const r2 = await startAgent({
      name: "r2",
      ip: r2ip,
      known: NODES,
      relayNodes,
      hooks: hooks(r2ip, [xip]),
    });
    agents.push(r2);
    relayNodes[1].advertiseAddress.push(r2.addr);
    const x = await startAgent({
      name: "x",
      ip: xip,
      known: NODES,
      relayNodes,
      // Connections dialled on loopback come from 127.0.0.1 (the kernel's source address):
      // that is how x and y see each other, so it is part of their LAN.
      hooks: hooks(xip, [], [yip, "127.0.0.1"]),
    });
    agents.push(x);
    relayNodes[2].advertiseAddress.push(x.addr);
    for (const r of [r1, r2, x]) r.tunnel.setRelayNodes(relayNodes);
    const y = await startAgent({
      name: "y",
      ip: yip,
      known: NODES,
      relayNodes,
      hooks: hooks(yip, [], [xip, "127.0.0.1"]),
    });
    agents.push(y);
    const t0 = performance.now();
    await waitFor(
      () => x.tunnel.relayState()?.verdict === "unreachable",
      10_000,
      "x found unreachable",
    );
    assertEquals(x.tunnel.relayState()?.relaying, false);
    console.log(`x found unreachable ${(performance.now() - t0).toFixed(0)} ms after y started`);
    // x works as a normal node: it reserves on the relays that are reachable.
    await waitFor(
      () =>
        ["r1", "r2"].every((n) =>
          x.tunnel.snapshot().relays.some((r) => r.node === n && r.reserved)
        ),
      10_000,
      "x reserved r1 and r2",
    );
    // y (x's LAN neighbour, nearest to it) stops using x and holds r1 and r2.
    await waitFor(
      () => {
        const v = y.tunnel.snapshot().relays;
        const xv = v.find((r) => r.node === "x");
        return xv?.reserved === false && xv.role === "candidate" &&
          xv.error === "does not offer relay service" &&
          ["r1", "r2"].every((n) => v.some((r) => r.node === n && r.reserved));
      },
      10_000,
      "y uses r1 and r2, not x",
    );
    assertEquals(
      y.tunnel.snapshot().relays.find((r) => r.node === "x")?.error,
      "does not offer relay service",
    );
    for (const r of [r1, r2]) {
      assertEquals(r.tunnel.relayState(), { verdict: "reachable", relaying: true, checking: true });
    }
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
  }
});
