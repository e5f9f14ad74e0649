/**
 * Relays decided by reachability (issue 8, "Relays"): dial-backs by connected peers tell a
 * node whether it can be reached from outside its LAN.
 *
 * 1. No relayNodes: r1 and r2 run as plain agents on the WAN, a1 and b1 (behind NAT-A and
 *    NAT-B) bootstrap to them. r1 and r2 find themselves reachable and offer relay service;
 *    a1 and b1 find themselves unreachable (two peers failed to dial them back), offer
 *    nothing, reserve on r1 and r2, and a1 → b1 service traffic crosses one of them.
 * 2. a2 (LAN A, behind NAT-A) is listed in relayNodes with r1 and r2: it finds itself not
 *    reachable, logs that with its advertiseAddress, stops relaying and reserves on r1 and r2
 *    like any node; a1 (its LAN neighbour, nearest to it) does not use it.
 *
 * ```
 *                  wan bridge 198.18.0.0/24 (namespace "wan")
 *    r1 .0.11     r2 .0.12      nat-a .0.21            nat-b .0.22
 *                                | LAN A 198.18.1.0/24   | LAN B 198.18.2.0/24
 *                               a1 .1.11   a2 .1.12     b1 .2.11
 * ```
 * Hole punching is off, so cross-LAN traffic can only take a relay.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { waitFor } from "../support/wait.ts";
import { issue9, type Topology } from "./topology.ts";
import { bundleOnce, type NsAgent, type Obj, startAgent } from "./support/agent.ts";
import { startBackends } from "./support/backends.ts";
import { curl } from "./support/client.ts";
import { clusterNodes } from "./support/cluster.ts";
import { ClusterApi } from "./support/cluster_api.ts";
import { meshConfig, sharedPsk } from "./support/configs.ts";
import {
  metrics,
  metricSum,
  relayView,
  untilServes,
  waitReserved,
  webOnB1,
} from "./support/observe.ts";
import { e2eTest } from "./support/scenario.ts";

const bundle = bundleOnce();

const NOT_REACHABLE =
  "listed in relayNodes but not reachable from outside; not relaying, working as a normal node";
const OFFERING = "reachable from outside; offering relay service";

/** Starts agents on `hosts` (tunnel on, hole punching off) and waits until they are ready. */
async function startAgents(
  topo: Topology,
  psk: { dir: string; path: string },
  hosts: string[],
  o: { relays: string[]; bootstrap?: string[] },
): Promise<NsAgent[]> {
  const b = await bundle();
  const agents = await Promise.all(hosts.map((name) =>
    startAgent(topo, name, {
      bundle: b,
      extraRead: [psk.dir],
      config: meshConfig(topo, {
        pskPath: psk.path,
        modules: name.startsWith("r") ? ["tunnel"] : ["tunnel", "proxy"],
        relays: o.relays,
        holePunch: false,
        extra: o.bootstrap
          ? {
            modules: {
              edgeTunnel: {
                bootstrapPeers: o.bootstrap.filter((n) => n !== name).map((n) =>
                  `/ip4/${topo.ip(n)}/tcp/20006`
                ),
              },
            },
          }
          : undefined,
      }),
    })
  ));
  await Promise.all(agents.map((a) => a.ready(30_000)));
  return agents;
}

/** Bytes a relay has forwarded (`edgemesh_tunnel_relay_bytes_total`, 0 when absent). */
async function relayBytes(agent: NsAgent): Promise<number> {
  return metricSum(await metrics(agent), "edgemesh_tunnel_relay_bytes_total");
}

e2eTest(
  "self-relay 1: with no relayNodes, r1 and r2 (reachable on the WAN) offer relay service; a1 and b1 behind NATs find themselves unreachable, reserve on them, and a1 → b1 crosses one",
  issue9(),
  async (topo) => {
    const clusterIP = "198.19.21.10";
    const url = `http://${clusterIP}/`;
    await ClusterApi.start(topo, {
      nodes: ["r1", "r2", "a1", "b1"],
      objects: [...clusterNodes(topo), ...webOnB1(topo, clusterIP)],
    });
    await startBackends(topo, "b1", { http: 8080 });
    const psk = await sharedPsk(topo);
    const t0 = performance.now();
    // The WAN agents first, so that the NATed agents' first bootstrap dial finds them.
    const [r1, r2] = await startAgents(topo, psk, ["r1", "r2"], {
      relays: [],
      bootstrap: ["r1"],
    });
    const [a1, b1] = await startAgents(topo, psk, ["a1", "b1"], {
      relays: [],
      bootstrap: ["r1", "r2"],
    });
    for (const r of [r1, r2]) {
      const l = await r.waitLog((l) => l.msg === OFFERING, "offering relay service", 20_000);
      deepEqual(l.addresses, [`${topo.ip(r.node)}:20006`], JSON.stringify(l));
    }
    console.log(
      `self-relay 1: r1 and r2 offer relay service ${(performance.now() - t0).toFixed(0)} ms ` +
        `after the agents started`,
    );
    for (const x of [a1, b1]) {
      const l = await x.waitLog(
        (l) => l.msg === "reachability" && l.verdict === "unreachable",
        "found unreachable",
        20_000,
      );
      console.log(`self-relay 1: ${x.node} unreachable: ${JSON.stringify(l.helpers)}`);
    }
    await waitReserved([a1, b1], ["r1", "r2"], 20_000);
    console.log(
      `self-relay 1: a1 and b1 reserved r1 and r2 ${(performance.now() - t0).toFixed(0)} ms ` +
        `after the agents started`,
    );
    const before = (await relayBytes(r1)) + (await relayBytes(r2));
    await untilServes(topo, "a1", url, "b1");
    const n = 1_000_000;
    const big = await curl(topo, "a1", `${url}bytes?n=${n}`, { maxTimeS: 20 });
    equal(big.body.length, n, big.stderr);
    const after = (await relayBytes(r1)) + (await relayBytes(r2));
    ok(after - before >= n, `r1 + r2 forwarded the ${n} bytes (${after - before})`);
    const p = (await a1.status()).peers.find((x: Obj) => x.node === "b1");
    equal(p?.path, "tunnel-relay", JSON.stringify(p));
    ok(["r1", "r2"].includes(p?.relay), JSON.stringify(p));
    // The NATed nodes offer nothing: nobody lists them as relays, they never offered.
    for (const a of [r1, r2, a1, b1]) {
      const names = [...(await relayView(a)).keys()];
      ok(!names.includes("a1") && !names.includes("b1"), `${a.node} relays: ${names}`);
    }
    for (const x of [a1, b1]) {
      equal(x.logs().filter((l) => l.msg === OFFERING).length, 0, `${x.node} offered relay`);
    }
  },
  { timeoutMs: 120_000 },
);

e2eTest(
  "self-relay 2: a2, listed in relayNodes but behind NAT-A, logs that it is not reachable, stops relaying and reserves on r1 and r2; a1 (its LAN neighbour) does not use it",
  issue9(),
  async (topo) => {
    const clusterIP = "198.19.22.10";
    const url = `http://${clusterIP}/`;
    await ClusterApi.start(topo, {
      nodes: ["r1", "r2", "a1", "a2", "b1"],
      objects: [...clusterNodes(topo), ...webOnB1(topo, clusterIP)],
    });
    await startBackends(topo, "b1", { http: 8080 });
    const psk = await sharedPsk(topo);
    const relays = ["r1", "r2", "a2"];
    const [r1, r2] = await startAgents(topo, psk, ["r1", "r2"], { relays });
    const [a1, a2, b1] = await startAgents(topo, psk, ["a1", "a2", "b1"], { relays });
    const t0 = performance.now();
    const warn = await a2.waitLog((l) => l.msg === NOT_REACHABLE, "not reachable", 20_000);
    equal(warn.level, "warn", JSON.stringify(warn));
    deepEqual(warn.advertiseAddress, [topo.ip("a2")], JSON.stringify(warn));
    console.log(
      `self-relay 2: a2 found not reachable ${(performance.now() - t0).toFixed(0)} ms after ` +
        `the nodes were ready`,
    );
    // a2 works as a normal node: it reserves on the relays that are reachable.
    await waitReserved([a2, a1, b1], ["r1", "r2"], 20_000);
    await waitFor(async () => {
      const v = (await relayView(a1)).get("a2");
      return v?.reserved === false && v.role === "candidate";
    }, { what: "a1 does not use a2", timeoutMs: 20_000, intervalMs: 200 });
    const a2Before = await relayBytes(a2);
    await untilServes(topo, "a1", url, "b1");
    const n = 1_000_000;
    const big = await curl(topo, "a1", `${url}bytes?n=${n}`, { maxTimeS: 20 });
    equal(big.body.length, n, big.stderr);
    equal(await relayBytes(a2), a2Before, "a2 forwarded nothing");
    const v = await relayView(a1);
    ok(v.get("r1")?.reserved && v.get("r2")?.reserved, JSON.stringify([...v.values()]));
    equal(v.get("a2")?.reserved, false, JSON.stringify(v.get("a2")));
    ok(r1.proc.running && r2.proc.running);
  },
  { timeoutMs: 120_000 },
);
