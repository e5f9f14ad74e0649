/**
 * Issue 9, scenario 6 — hole punching. a1 (LAN A) and b1 (LAN B) sit behind two MASQUERADE
 * NATs with a home router's forward filter; r1 relays. a1 reaches a service on b1: first
 * through r1, then our coordinated punch (`/edgemesh/punch/1.0.0`, mod/tunnel/punch.ts)
 * upgrades the pair to a direct connection (status shows `tunnel-direct`) while traffic keeps
 * flowing; with `enableHolePunch: false` the pair stays relayed. The upgrade time is printed.
 *
 * ```
 *                  wan bridge 198.18.0.0/24 (namespace "wan")
 *    relay r1 .0.11                        nat-a .0.21            nat-b .0.22
 *                                           | LAN A 198.18.1.0/24   | LAN B 198.18.2.0/24
 *                                          a1 .1.11                b1 .2.11
 * ```
 */

import { equal, ok } from "node:assert/strict";
import { waitFor } from "../support/wait.ts";
import { issue9, type Topology } from "./topology.ts";
import { bundleOnce, type NsAgent, type Obj, startAgent } from "./support/agent.ts";
import { startBackends } from "./support/backends.ts";
import { curl } from "./support/client.ts";
import { clusterNodes, serviceObjects } from "./support/cluster.ts";
import { ClusterApi } from "./support/cluster_api.ts";
import { meshConfig, sharedPsk } from "./support/configs.ts";
import { e2eTest } from "./support/scenario.ts";

const bundle = bundleOnce();
const CLUSTER_IP = "198.19.6.10";
const URL_ = `http://${CLUSTER_IP}:80`;

async function startPair(topo: Topology, holePunch: boolean): Promise<NsAgent[]> {
  await ClusterApi.start(topo, {
    objects: [
      ...clusterNodes(topo),
      ...serviceObjects({
        namespace: "demo",
        name: "web",
        clusterIP: CLUSTER_IP,
        ports: [{ name: "http", port: 80, targetPort: 8080 }],
        endpoints: [{ node: "b1", ip: topo.ip("b1") }],
      }),
    ],
  });
  await startBackends(topo, "b1");
  const psk = await sharedPsk(topo);
  const b = await bundle();
  const agents = await Promise.all(["r1", "a1", "b1"].map((n) =>
    startAgent(topo, n, {
      bundle: b,
      // PUNCH_DEBUG=libp2p:tcp*,libp2p:upgrader* shows libp2p's own logs of the punched sockets.
      env: Deno.env.get("PUNCH_DEBUG") ? { DEBUG: Deno.env.get("PUNCH_DEBUG")! } : undefined,
      extraRead: [psk.dir],
      config: meshConfig(topo, {
        pskPath: psk.path,
        modules: ["tunnel", "proxy"],
        relays: ["r1"],
        holePunch,
        mdns: false,
        extra: { logLevel: "debug" },
      }),
    })
  ));
  await Promise.all(agents.map((a) => a.ready(30_000)));
  const [r1, a1, b1] = agents;
  // The mesh is formed once both nodes hold a reservation on r1 and r1 knows both: the first
  // stream a1 → b1 then goes through r1 at once.
  await waitFor(async () => {
    const [sr, sa, sb] = await Promise.all([r1.status(), a1.status(), b1.status()]);
    const peers = new Set(sr.peers.map((p: Obj) => p.node));
    return peers.has("a1") && peers.has("b1") &&
      [sa, sb].every((s) => s.relays.some((r: Obj) => r.node === "r1" && r.reserved));
  }, { what: "a1 and b1 reserved on r1", timeoutMs: 15_000, intervalMs: 100 });
  return agents;
}

/** The path `agent`'s status shows for peer `node` ("none" while not connected). */
async function pathTo(agent: NsAgent, node: string): Promise<string> {
  const s = await agent.status();
  return s.peers.find((p: Obj) => p.node === node)?.path ?? "none";
}

/** Requests to the service on b1, one after another, until stopped; every result kept. */
function requestLoop(topo: Topology) {
  const results: { ok: boolean; t: number; detail: string }[] = [];
  let stop = false;
  const done = (async () => {
    for (let i = 0; i < 2000 && !stop; i++) {
      const r = await curl(topo, "a1", `${URL_}/`, { maxTimeS: 3 });
      results.push({
        ok: r.status === 200 && r.body === "b1",
        t: performance.now(),
        detail: `${r.status} ${r.body.slice(0, 40)} ${r.stderr.trim()}`,
      });
    }
  })();
  return {
    /** Results from the first success on (earlier ones only wait for the mesh to form). */
    get results() {
      const i = results.findIndex((r) => r.ok);
      return i < 0 ? [] : results.slice(i);
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

/**
 * Cuts (or restores) every packet between the two NATs' WAN addresses as they cross nat-a, in
 * both directions: relayed traffic (via r1) is untouched, punches cannot get through.
 */
async function blockNatToNat(topo: Topology, on: boolean): Promise<void> {
  const peer = topo.ip("nat-b");
  for (const dir of [["-d", peer], ["-s", peer]]) {
    await topo.exec("nat-a", "iptables", [
      "-w",
      "5",
      on ? "-I" : "-D",
      "FORWARD",
      ...dir,
      "-j",
      "DROP",
    ]);
    await topo.exec("nat-a", "iptables", [
      "-w",
      "5",
      on ? "-I" : "-D",
      "INPUT",
      ...dir,
      "-j",
      "DROP",
    ]);
  }
}

for (const stealth of [false, true]) {
  const kind = stealth ? "stealth NATs" : "plain MASQUERADE NATs";
  e2eTest(
    `scenario 6 (${kind}): a1 → b1 starts relayed through r1, a failed punch is retried, and the retry upgrades the pair to a direct connection while a long stream and repeated requests keep flowing`,
    issue9({ relays: ["r1"], stealth }),
    async (topo) => {
      // The first punch must fail (NAT-to-NAT traffic dropped at nat-a) so that a long stream
      // is surely running on the relayed connection when the retry upgrades it.
      await blockNatToNat(topo, true);
      const [, a1, b1] = await startPair(topo, true);
      const loop = requestLoop(topo);
      const first = await waitFor(() => loop.results.find((r) => r.ok), {
        what: "a first request a1 → b1",
        timeoutMs: 20_000,
        intervalMs: 20,
      });
      equal(await pathTo(a1, "b1"), "tunnel-relay", "a1 reaches b1 through r1 first");
      const m = (await a1.admin("/metrics")).body;
      ok(
        /edgemesh_tunnel_streams_total\{[^}]*path="tunnel-relay"[^}]*result="ok"[^}]*\} [1-9]/
          .test(m),
        "the first streams went through the relay",
      );
      // A long stream (3 MB at 200 kB/s, ~15 s) on the relayed connection, across the upgrade.
      const n = 3_000_000;
      const long = curl(topo, "a1", `${URL_}/bytes?n=${n}`, {
        maxTimeS: 40,
        args: ["--limit-rate", "200k", "-o", "/dev/null", "-w", "%{size_download}\n"],
      });
      const logs = () => [...a1.logs(), ...b1.logs()];
      await waitFor(() => logs().some((l) => l.msg === "hole punch failed; staying on the relay"), {
        what: "the first (blocked) punch to fail",
        timeoutMs: 20_000,
        intervalMs: 50,
      });
      await blockNatToNat(topo, false);
      const unblocked = performance.now();
      await waitFor(async () => await pathTo(a1, "b1") === "tunnel-direct", {
        what: "a1's status shows b1 as tunnel-direct",
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      const directAt = performance.now();
      await waitFor(() => loop.results.filter((r) => r.t > directAt).length >= 5, {
        what: "five more requests after the upgrade",
        timeoutMs: 15_000,
        intervalMs: 20,
      });
      await loop.stop();
      const big = await long;
      const won = logs().find((l) => l.msg === "hole punch succeeded: direct connection");
      const failed = logs().filter((l) => l.msg === "hole punch failed; staying on the relay");
      console.log(
        `scenario 6 (${kind}): the winning punch took ${won?.ms} ms from its start to a direct ` +
          `connection (${won?.attempts} connect attempts), after ${failed.length} failed ` +
          `punch(es); direct ${Math.round(directAt - unblocked)} ms after unblocking (backoff ` +
          `included), ${Math.round(directAt - first.t)} ms after the first relayed response; ` +
          `${loop.results.length} requests, ${loop.results.filter((r) => !r.ok).length} failed`,
      );
      ok(won, "a punch succeeded");
      const bad = loop.results.filter((r) => !r.ok);
      equal(bad.length, 0, `requests failed: ${JSON.stringify(bad)}`);
      equal(big.exit, 0, `the long stream across the upgrade: ${big.stderr}`);
      ok(big.body.startsWith(String(n)), `the long stream delivered ${big.body} of ${n} bytes`);
      equal(await pathTo(b1, "a1"), "tunnel-direct", "b1 sees a1 directly too");
      const m2 = (await a1.admin("/metrics")).body;
      ok(
        /edgemesh_tunnel_streams_total\{[^}]*path="tunnel-direct"[^}]*result="ok"[^}]*\} [1-9]/
          .test(m2),
        "later streams use the direct connection",
      );
    },
    { timeoutMs: 120_000 },
  );
}

e2eTest(
  "scenario 6: with enableHolePunch false, a1 → b1 stays relayed",
  issue9({ relays: ["r1"] }),
  async (topo) => {
    const [, a1, b1] = await startPair(topo, false);
    const loop = requestLoop(topo);
    await waitFor(() => loop.results.some((r) => r.ok), {
      what: "a first request a1 → b1",
      timeoutMs: 15_000,
      intervalMs: 20,
    });
    // Longer than a punch window plus its exchange: a punch, had one run, would be done.
    const until = performance.now() + 7000;
    while (performance.now() < until) {
      equal(await pathTo(a1, "b1"), "tunnel-relay");
      await new Promise((r) => setTimeout(r, 250));
    }
    await loop.stop();
    equal(loop.results.filter((r) => !r.ok).length, 0);
    const logs = [...a1.logs(), ...b1.logs()];
    equal(logs.filter((l) => /hole punch/.test(String(l.msg))).length, 0, "no punch ran");
  },
  { timeoutMs: 90_000 },
);
