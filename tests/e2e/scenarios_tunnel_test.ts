/**
 * Issue 9 scenarios that need the tunnel: cross-LAN through a relay (3), relay failover (4),
 * nearest relay (5), a runtime relay change (8) and hostile peers (10); hole punching (6) is
 * proven in punch_test.ts. The shipped bundle runs in every host with the narrowed
 * permissions; clients are real (`curl`, a WebSocket and a UDP client). Hole punching is off in
 * every agent here, so cross-LAN traffic can only take a relay.
 *
 * ```
 *                  wan bridge 198.18.0.0/24 (namespace "wan")
 *    relay r1 .0.11     relay r2 .0.12      nat-a .0.21            nat-b .0.22
 *                                            | LAN A 198.18.1.0/24   | LAN B 198.18.2.0/24
 *                                           a1 .1.11   a2 .1.12     b1 .2.11   b2 .2.12
 * ```
 *
 * Measured figures (transfer rate, failover times) are printed with `console.log` for
 * docs/BENCHMARKS.md.
 */

import { createHash } from "node:crypto";
import { deepEqual, equal, ok } from "node:assert/strict";
import { waitFor } from "../support/wait.ts";
import { issue9, type Topology } from "./topology.ts";
import { bundleOnce, type NsAgent, type Obj, startAgent } from "./support/agent.ts";
import { pattern, startBackends } from "./support/backends.ts";
import { curl } from "./support/client.ts";
import { agentConfigMap, clusterNodes, nodeObject, relayNodes } from "./support/cluster.ts";
import { ClusterApi } from "./support/cluster_api.ts";
import { meshConfig, type ModuleName, sharedPsk } from "./support/configs.ts";
import { echo } from "./support/echo_client.ts";
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

interface MeshHost {
  name: string;
  /** Modules besides the tunnel (default: proxy on nodes, nothing on relays). */
  modules?: ModuleName[];
  /** Overrides merged last into this host's config. */
  extra?: Obj;
  /** Edits the finished config (e.g. deleting keys), after `extra`. */
  edit?: (config: Obj) => void;
  /** Another PSK file for this host only. */
  psk?: { dir: string; path: string };
}

/** Starts agents (tunnel on, hole punching off) on `hosts` and waits until they are ready. */
async function startTunnelMesh(
  topo: Topology,
  hosts: (string | MeshHost)[],
  psk?: { dir: string; path: string },
): Promise<Map<string, NsAgent>> {
  const shared = psk ?? await sharedPsk(topo);
  const b = await bundle();
  const relays = new Set(topo.names("relay"));
  const agents = await Promise.all(hosts.map((h) => {
    const host: MeshHost = typeof h === "string" ? { name: h } : h;
    const key = host.psk ?? shared;
    const config = meshConfig(topo, {
      pskPath: key.path,
      modules: ["tunnel", ...(host.modules ?? (relays.has(host.name) ? [] : ["proxy"]))],
      holePunch: false,
      extra: host.extra,
    });
    host.edit?.(config);
    return startAgent(topo, host.name, {
      bundle: b,
      extraRead: [key.dir],
      config,
    });
  }));
  await Promise.all(agents.map((a) => a.ready(30_000)));
  return new Map(agents.map((a) => [a.node, a]));
}

/** The agent of `node` (throws when there is none). */
function of(agents: Map<string, NsAgent>, node: string): NsAgent {
  const a = agents.get(node);
  if (!a) throw new Error(`no agent on ${node}`);
  return a;
}

/** `status.peers[]` entry for `node`, if connected. */
async function peer(agent: NsAgent, node: string): Promise<Obj | undefined> {
  return (await agent.status()).peers.find((p: Obj) => p.node === node);
}

/** Bytes each relay has forwarded so far (`edgemesh_tunnel_relay_bytes_total`). */
async function relayBytes(agents: Map<string, NsAgent>, relays: string[]): Promise<number[]> {
  return await Promise.all(relays.map(async (r) => {
    const a = of(agents, r);
    return a.proc.running ? metricSum(await metrics(a), "edgemesh_tunnel_relay_bytes_total") : 0;
  }));
}

/**
 * The relay that carries a new stream from `from` to `url` (a `/bytes` endpoint): the one
 * whose byte counter grows by the body. Measured, because `status.peers[].relay` names any
 * of the open circuits (the standby's is pre-warmed too).
 */
async function relayInUse(
  topo: Topology,
  agents: Map<string, NsAgent>,
  from: string,
  url: string,
  relays: string[],
): Promise<string> {
  const n = 1_000_000;
  const before = await relayBytes(agents, relays);
  const r = await curl(topo, from, `${url}bytes?n=${n}`, { maxTimeS: 10 });
  equal(r.body.length, n, `1 MB from ${from}: ${r.stderr}`);
  const after = await relayBytes(agents, relays);
  const carried = relays.filter((_, i) => after[i] - before[i] >= n);
  equal(carried.length, 1, `one relay carried the 1 MB: ${relays} ${before} → ${after}`);
  return carried[0];
}

/** The SHA-256 (hex) of the first `n` bytes of the backends' `/bytes` pattern. */
function patternSha256(n: number): string {
  const h = createHash("sha256");
  const chunk = new Uint8Array(1 << 20);
  for (let off = 0; off < n; off += chunk.length) {
    const len = Math.min(chunk.length, n - off);
    for (let j = 0; j < len; j++) chunk[j] = pattern(off + j);
    h.update(chunk.subarray(0, len));
  }
  return h.digest("hex");
}

e2eTest(
  "scenario 3: a1 reaches a service on b1 (other LAN, behind NAT) through the relay: HTTP by ClusterIP, WebSocket, UDP echo and 100 MB with a checksum; status shows path tunnel-relay via r1",
  issue9({ relays: ["r1"] }),
  async (topo) => {
    const clusterIP = "198.19.3.10";
    const url = `http://${clusterIP}/`;
    await ClusterApi.start(topo, {
      nodes: ["r1", "a1", "b1"],
      objects: [...clusterNodes(topo), ...webOnB1(topo, clusterIP, true)],
    });
    await startBackends(topo, "b1", { http: 8080, udp: 7007 });
    const agents = await startTunnelMesh(topo, ["r1", "a1", "b1"]);
    const a1 = of(agents, "a1");
    await waitReserved([a1, of(agents, "b1")], ["r1"]);

    const first = await untilServes(topo, "a1", url, "b1");
    console.log(
      `scenario 3: first a1 → b1 answer ${first.ms.toFixed(0)} ms after both reserved r1 ` +
        `(${first.attempts} curl attempt(s) of at most 3 s)`,
    );
    const who = await curl(topo, "a1", `http://${clusterIP}/whoami`);
    equal(who.status, 200, who.stderr);
    // The backend sees b1's agent dialing its own address, not a1 (nothing routes LAN to LAN).
    equal(JSON.parse(who.body).remote.split(":")[0], topo.ip("b1"), who.body);

    const w = await echo(topo, "a1", "ws", clusterIP, 80, "hello");
    ok(w.ok, `WebSocket through ${clusterIP}:80 (${w.error})`);
    equal(w.reply, "b1:hello");
    const u = await echo(topo, "a1", "udp", clusterIP, 7, "ping-1");
    ok(u.ok, `UDP echo through ${clusterIP}:7 (${u.error})`);
    equal(u.reply, "ping-1");

    const p = await peer(a1, "b1");
    ok(p, "b1 is a peer of a1");
    equal(p.path, "tunnel-relay", JSON.stringify(p));
    equal(p.relay, "r1", JSON.stringify(p));
    const web = (await a1.status()).services.find((s: Obj) => s.name === "web");
    ok(
      web?.endpoints.every((e: Obj) => e.path === "tunnel-relay" || e.path === "tunnel"),
      `endpoints on b1 go through the tunnel: ${JSON.stringify(web?.endpoints)}`,
    );
    const m = await metrics(a1);
    const relayed = metricSum(m, "edgemesh_proxy_endpoint_picks_total", { path: "tunnel-relay" });
    ok(relayed >= 3, `picks on path tunnel-relay: ${relayed}`);
    equal(metricSum(m, "edgemesh_proxy_endpoint_picks_total", { path: "tunnel-direct" }), 0);
    // Last, with the PSK on as in production. Known broken (see the report): @libp2p/pnet's
    // xsalsa20 1.2.0 grows its shared WebAssembly memory on every alternation between
    // connections and dies ("Maximum memory size exceeded") after tens of MB; with
    // `psk.enable: false` this transfer passes (~26 MB/s here).
    const n = 100_000_000;
    const expected = patternSha256(n);
    const t0 = performance.now();
    const big = await topo.exec("a1", "bash", [
      "-c",
      `set -o pipefail; curl -sS --max-time 90 '${url}bytes?n=${n}' | tee >(wc -c >&2) | sha256sum`,
    ], { timeoutMs: 100_000, check: false });
    const secs = (performance.now() - t0) / 1000;
    equal(big.code, 0, `100 MB transfer: ${big.stderr}`);
    equal(Number(big.stderr.trim().split("\n").at(-1)), n, "byte count");
    equal(big.stdout.split(" ")[0], expected, "SHA-256 of the 100 MB body");
    console.log(
      `scenario 3: 100 MB a1 → b1 through relay r1 in ${secs.toFixed(2)} s (${
        (n / 1e6 / secs).toFixed(1)
      } MB/s), checksum ok`,
    );
  },
  { timeoutMs: 150_000 },
);

e2eTest(
  "scenario 4: the relay a1 and b1 use is killed (a new request succeeds within 1 s) or frozen (within 2 s); back again it is reserved and used, nothing breaks",
  issue9(),
  async (topo) => {
    const clusterIP = "198.19.4.10";
    const url = `http://${clusterIP}/`;
    await ClusterApi.start(topo, {
      nodes: ["r1", "r2", "a1", "b1"],
      objects: [...clusterNodes(topo), ...webOnB1(topo, clusterIP)],
    });
    await startBackends(topo, "b1", { http: 8080 });
    const agents = await startTunnelMesh(topo, ["r1", "r2", "a1", "b1"]);
    const a1 = of(agents, "a1");
    const b1 = of(agents, "b1");
    await waitReserved([a1, b1], ["r1", "r2"]);
    await untilServes(topo, "a1", url, "b1");

    /** One round: take the relay in use away, time a new request, bring it back. */
    const round = async (how: "kill" | "freeze", limitMs: number) => {
      // A second request lets the standby's circuit warm up (as it would in steady traffic).
      await untilServes(topo, "a1", url, "b1");
      const used = await relayInUse(topo, agents, "a1", url, ["r1", "r2"]);
      console.log(
        `scenario 4: a1 → b1 streams go through ${used} (status.peers says ${
          (await peer(a1, "b1"))?.relay
        })`,
      );
      const other = used === "r1" ? "r2" : "r1";
      const relay = of(agents, used);
      const t0 = performance.now();
      if (how === "kill") await relay.stop("SIGKILL");
      else relay.freeze(true);
      const r = await curl(topo, "a1", `${url}whoami`, { maxTimeS: 5 });
      const wallMs = performance.now() - t0;
      equal(r.status, 200, `request after ${how}ing ${used}: ${r.stderr}`);
      console.log(
        `scenario 4: ${how} ${used}: the next request a1 → b1 took ${
          r.totalMs.toFixed(0)
        } ms (curl), ${wallMs.toFixed(0)} ms from the ${how} to the answer`,
      );
      ok(r.totalMs <= limitMs, `request within ${limitMs} ms after ${how} (${r.totalMs} ms)`);
      equal(await relayInUse(topo, agents, "a1", url, [other]), other, `a1 → b1 via ${other}`);
      equal((await peer(a1, "b1"))?.relay, other, `status: a1 → b1 through ${other}`);
      for (let i = 0; i < 5; i++) {
        const again = await curl(topo, "a1", url, { maxTimeS: 3 });
        equal(again.body, "b1", `request ${i} with ${used} gone: ${again.stderr}`);
      }
      // Bring it back.
      if (how === "kill") agents.set(used, await relay.restart());
      else relay.freeze(false);
      const tBack = performance.now();
      await waitReserved([a1, b1], [used], 20_000);
      console.log(
        `scenario 4: ${used} back (${
          how === "kill" ? "restarted" : "thawed"
        }): reserved again by a1 and b1 after ${(performance.now() - tBack).toFixed(0)} ms`,
      );
      for (const a of [a1, b1]) {
        const v = await relayView(a);
        deepEqual(
          [v.get("r1")?.reserved, v.get("r2")?.reserved],
          [true, true],
          `${a.node}: both relays reserved`,
        );
      }
      return used;
    };
    const killed = await round("kill", 1000);
    // The returned relay is used again: take the other away, streams must move to it.
    const frozen = await round("freeze", 2000);
    ok(frozen !== killed, `the second round took away the other relay (${frozen})`);
    await untilServes(topo, "a1", url, "b1", 5000);
    // The thawed relay is reserved but not primary any more (no switch back without a gain).
    const now = await relayInUse(topo, agents, "a1", url, ["r1", "r2"]);
    console.log(`scenario 4: after both rounds a1 → b1 streams go through ${now}`);
    for (const a of [a1, b1]) {
      ok(a.proc.running, `${a.node}'s agent still runs`);
    }
  },
  { timeoutMs: 120_000 },
);

e2eTest(
  "scenario 5: with r2 behind +40 ms each way, nodes pick r1 as primary and streams go through it",
  issue9(),
  async (topo) => {
    const clusterIP = "198.19.5.10";
    const url = `http://${clusterIP}/`;
    await ClusterApi.start(topo, {
      nodes: ["r1", "r2", "a1", "b1"],
      objects: [...clusterNodes(topo), ...webOnB1(topo, clusterIP)],
    });
    await startBackends(topo, "b1", { http: 8080 });
    // r2's agent listens on its loopback only; the WAN reaches it through the delay.
    await topo.delay("r2", {
      listen: `${topo.ip("r2")}:20006`,
      target: "127.0.0.1:20006",
      delayMs: 40,
    });
    const agents = await startTunnelMesh(topo, [
      "r1",
      { name: "r2", extra: { modules: { edgeTunnel: { listenAddress: ["127.0.0.1"] } } } },
      "a1",
      "b1",
    ]);
    const a1 = of(agents, "a1");
    const b1 = of(agents, "b1");
    await waitReserved([a1, b1], ["r1", "r2"]);
    for (const a of [a1, b1]) {
      const v = await relayView(a);
      const r1 = v.get("r1")!;
      const r2 = v.get("r2")!;
      console.log(
        `scenario 5: ${a.node}: r1 ${r1.rttMs} ms (${r1.role}), r2 ${r2.rttMs} ms (${r2.role})`,
      );
      equal(r1.role, "primary", `${a.node}: r1 primary (${JSON.stringify([...v.values()])})`);
      equal(r2.role, "standby", `${a.node}: r2 standby`);
      ok(r2.rttMs >= 70, `${a.node}: r2 is slow (${r2.rttMs} ms)`);
      ok(r1.rttMs < 30, `${a.node}: r1 is near (${r1.rttMs} ms)`);
    }
    const before = await relayBytes(agents, ["r1", "r2"]);
    await untilServes(topo, "a1", url, "b1");
    const n = 4_000_000;
    const big = await curl(topo, "a1", `${url}bytes?n=${n}`, { maxTimeS: 30 });
    equal(big.status, 200, big.stderr);
    equal(big.body.length, n);
    const after = await relayBytes(agents, ["r1", "r2"]);
    const [d1, d2] = [after[0] - before[0], after[1] - before[1]];
    console.log(`scenario 5: relayed bytes during the test: r1 ${d1}, r2 ${d2}`);
    ok(d1 >= n, `r1 forwarded the ${n} bytes (${d1})`);
    ok(d2 < n / 10, `r2 forwarded little (${d2})`);
  },
  { timeoutMs: 90_000 },
);

e2eTest(
  "scenario 8: r2 added to relayNodes through the edgemesh-agent-cfg ConfigMap: a1 and b1 reserve it and use it without a restart",
  issue9(),
  async (topo) => {
    const clusterIP = "198.19.8.10";
    const url = `http://${clusterIP}/`;
    const cfg = (relays: string[]) =>
      agentConfigMap({ modules: { edgeTunnel: { relayNodes: relayNodes(topo, relays) } } });
    const api = await ClusterApi.start(topo, {
      nodes: ["r1", "r2", "a1", "b1"],
      objects: [...clusterNodes(topo), ...webOnB1(topo, clusterIP)],
    });
    await startBackends(topo, "b1", { http: 8080 });
    // Nodes take relayNodes from the cluster layer only (the local file would override it);
    // the relays know their role from their own file.
    const fromCluster = (c: Obj) => delete c.modules.edgeTunnel.relayNodes;
    const agents = await startTunnelMesh(topo, [
      "r1",
      "r2",
      { name: "a1", edit: fromCluster },
      { name: "b1", edit: fromCluster },
    ]);
    const a1 = of(agents, "a1");
    const b1 = of(agents, "b1");
    // The ConfigMap appears once the agents run: a cluster config that ConfigSync writes while
    // the agent is still starting is not applied until its next change (see the report), and
    // this scenario is about changes at run time.
    await api.apply(cfg(["r1"]));
    await waitReserved([a1, b1], ["r1"]);
    await untilServes(topo, "a1", url, "b1");
    for (const a of [a1, b1]) deepEqual([...(await relayView(a)).keys()], ["r1"], a.node);
    equal((await peer(a1, "b1"))?.relay, "r1");

    const t0 = performance.now();
    await api.apply(cfg(["r1", "r2"]));
    await waitReserved([a1, b1], ["r1", "r2"], 20_000);
    console.log(
      `scenario 8: r2 reserved by a1 and b1 ${
        (performance.now() - t0).toFixed(0)
      } ms after the ConfigMap change`,
    );
    for (const a of [a1, b1]) {
      ok(a.proc.running, `${a.node} was not restarted`);
      equal(a.logs().filter((l) => l.msg === "agent ready").length, 1, `${a.node} started once`);
      ok(
        a.logs().filter((l) =>
          l.msg === "config reloaded" && l.applied?.includes("modules.edgeTunnel.relayNodes")
        ).length === 2,
        `${a.node} applied relayNodes live`,
      );
    }
    // Using it: with r1 gone, a1 → b1 goes through r2.
    await of(agents, "r1").stop("SIGKILL");
    const r = await curl(topo, "a1", url, { maxTimeS: 5 });
    equal(r.body, "b1", `a1 → b1 with r1 gone: ${r.stderr}`);
    equal((await peer(a1, "b1"))?.relay, "r2", "a1 → b1 through r2");
  },
  { timeoutMs: 90_000 },
);

e2eTest(
  "scenario 10: an agent with the wrong PSK and one claiming a1's name with its own key are refused; nobody lists them and a1 → b1 keeps working",
  issue9({ relays: ["r1"] }),
  async (topo) => {
    const clusterIP = "198.19.10.10";
    const url = `http://${clusterIP}/`;
    await ClusterApi.start(topo, {
      nodes: ["r1", "a1", "a2", "b1", "b2"],
      objects: [...clusterNodes(topo), ...webOnB1(topo, clusterIP)],
    });
    await startBackends(topo, "b1", { http: 8080 });
    const psk = await sharedPsk(topo);
    const legit = await startTunnelMesh(topo, ["r1", "a1", "b1"], psk);
    const a1 = of(legit, "a1");
    const b1 = of(legit, "b1");
    await waitReserved([a1, b1], ["r1"]);
    await untilServes(topo, "a1", url, "b1");
    const ids = new Map<string, string>();
    for (const a of legit.values()) ids.set((await a.status()).peerId, a.node);
    const marks = new Map([...legit.values()].map((a) => [a.node, a.logs().length]));

    // a2: a cluster node's name, the wrong PSK (finds a1 by mDNS, dials r1).
    // b2: claims to be a1 with its own key (finds b1 by mDNS, dials r1).
    const wrongPsk = await sharedPsk(topo);
    const hostile = await startTunnelMesh(topo, [
      { name: "a2", psk: wrongPsk, modules: [] },
      { name: "b2", modules: [], extra: { nodeName: "a1" } },
    ], psk);
    const hostileIds = new Set<string>();
    for (const a of hostile.values()) hostileIds.add((await a.status()).peerId);

    // Watch every legit status while the hostile agents try for a while.
    const seen: string[] = [];
    const check = async () => {
      for (const a of legit.values()) {
        for (const p of (await a.status()).peers) {
          if (hostileIds.has(p.peerId) || ids.get(p.peerId) !== p.node) {
            seen.push(`${a.node} lists ${JSON.stringify(p)}`);
          }
        }
      }
    };
    const refusedImpostor = () =>
      [b1, of(legit, "r1")].some((a) =>
        a.logs().slice(marks.get(a.node)).some((l) =>
          l.msg === "peer refused" && l.reason === "conflict"
        )
      );
    await waitFor(async () => {
      await check();
      return refusedImpostor();
    }, { what: "the impostor refused (conflict)", timeoutMs: 20_000, intervalMs: 200 });
    for (let i = 0; i < 10; i++) await check();
    deepEqual(seen, [], "no legit agent ever listed a hostile peer");
    const refusals = [...legit.values()].flatMap((a) =>
      a.logs().slice(marks.get(a.node)).filter((l) => l.msg === "peer refused").map((l) =>
        `${a.node}: ${l.reason} ${l.message}`
      )
    );
    // The wrong PSK fails in the private-network handshake, before any claim: the legit side
    // logs nothing about it (libp2p drops the connection); the intruder sees r1 unreachable.
    const a2r1 = await waitFor(async () => {
      const v = (await relayView(hostile.get("a2")!)).get("r1");
      return v?.error ? v : undefined;
    }, { what: "the wrong-PSK agent's first attempt on r1 to fail", timeoutMs: 15_000 });
    console.log(
      `scenario 10: refusals logged: ${refusals.join(" | ")}; the wrong-PSK agent sees r1 as ${
        JSON.stringify(a2r1)
      }`,
    );
    equal(a2r1?.reserved, false, "the wrong-PSK agent holds no reservation on r1");
    ok(a2r1?.error, "the wrong-PSK agent cannot reach r1");
    for (const a of hostile.values()) {
      const peers = (await a.status()).peers.filter((p: Obj) => ids.has(p.peerId));
      deepEqual(peers, [], `${a.node} (hostile) has no verified legit peer`);
    }
    await untilServes(topo, "a1", url, "b1", 5000);
    equal((await peer(a1, "b1"))?.peerId, (await b1.status()).peerId, "b1 is still b1");
  },
  { timeoutMs: 90_000 },
);

e2eTest(
  "scenario 11: a health group spanning LAN A and LAN B (both behind NAT) agrees through relay r1: probes and verdicts cross by tunnel, and a stopped member is voted unhealthy on both sides",
  issue9({ relays: ["r1"] }),
  async (topo) => {
    const unit = "unit-two-lans";
    const members = ["a1", "a2", "b1", "b2"];
    await ClusterApi.start(topo, {
      nodes: ["r1", ...members],
      objects: [
        ...topo.names("relay").map((n) => nodeObject(n, topo.ip(n))),
        ...members.map((n) =>
          nodeObject(n, topo.ip(n), { labels: { [unit]: "nodeunits.superedge.io" } })
        ),
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { namespace: "kube-system", name: "edge-health-config" },
          data: { "unit-internal-check": "true", "check-units": unit },
        },
      ],
    });
    const agents = await startTunnelMesh(topo, [
      "r1",
      ...members.map((name) => ({ name, modules: ["health" as const] })),
    ]);
    const views = async (a: NsAgent) =>
      new Map<string, Obj>(
        (await a.status()).health.members.map((m: Obj) => [m.node as string, m]),
      );
    const t = performance.now();
    await waitFor(async () => {
      for (const n of members) {
        const v = await views(of(agents, n));
        if (!members.every((m) => v.get(m)?.verdict === "healthy")) return false;
      }
      return true;
    }, { what: "all four healthy in every view", timeoutMs: 20_000, intervalMs: 200 });
    console.log(
      `scenario 11: a1, a2, b1, b2 agree all healthy ${
        (performance.now() - t).toFixed(0)
      } ms after the agents were ready`,
    );
    // Across the LANs only the tunnel carries probes; inside a LAN they go direct.
    const a1 = await views(of(agents, "a1"));
    equal(a1.get("a2")?.probePath, "direct", "a1 probes a2 directly");
    equal(a1.get("b1")?.probePath, "tunnel", "a1 probes b1 through the tunnel");
    const b1 = await views(of(agents, "b1"));
    equal(b1.get("a1")?.probePath, "tunnel", "b1 probes a1 through the tunnel");
    // Digests can only cross between the LANs through the tunnel: some member pushed its
    // round there (which one depends on the gossip's random choice of peers).
    let tunneled = 0;
    for (const n of members) {
      tunneled += metricSum(await metrics(of(agents, n)), "edgemesh_health_exchanges_total", {
        result: "ok",
        path: "tunnel",
      });
    }
    ok(tunneled > 0, "digests were exchanged through the tunnel");

    await of(agents, "b2").stop();
    const t2 = performance.now();
    await waitFor(async () => {
      for (const n of ["a1", "a2", "b1"]) {
        if ((await views(of(agents, n))).get("b2")?.verdict !== "unhealthy") return false;
      }
      return true;
    }, { what: "b2 voted unhealthy in LAN A and LAN B", timeoutMs: 20_000, intervalMs: 200 });
    console.log(
      `scenario 11: stopped b2 voted unhealthy on both sides in ${
        (performance.now() - t2).toFixed(0)
      } ms`,
    );
    for (const n of ["a1", "a2", "b1"]) {
      const v = await views(of(agents, n));
      ok(["a1", "a2", "b1"].every((x) => v.get(x)?.verdict === "healthy"), `${n}: others healthy`);
    }
  },
  { timeoutMs: 90_000 },
);
