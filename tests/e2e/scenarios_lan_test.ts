/**
 * Issue 9 scenarios that need no relay: DNS (1), LAN direct (2), LAN autonomy (7; with the
 * tunnel on, a1 and a2 also stay connected by mDNS) and the health partition (9). The shipped
 * bundle runs in every node with the narrowed permissions; clients are real (`dig`, `curl`, a
 * WebSocket and a UDP client). Cross-node traffic must take the kernel path (`lan`): with
 * `TUNNEL = true` (the default) every agent also runs the tunnel, found by mDNS, and no stream
 * may carry this traffic; with `TUNNEL = false` a connection that tried the tunnel would fail.
 *
 * ```
 *                  wan bridge 198.18.0.0/24              one bridge 198.18.3.0/24 (scenario 9)
 *   [cloud .0.2]        nat-a .0.21                       cloud .3.2
 *                        | LAN A 198.18.1.0/24            h1 .3.11  h2 .3.12  h3 .3.13
 *                       a1 .1.11   a2 .1.12               h4 .3.14  h5 .3.15
 * ```
 *
 * Measured figures (restart-to-serving, time to judge a partition) are printed with
 * `console.log` for docs/BENCHMARKS.md.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { waitFor } from "../support/wait.ts";
import { issue9, singleLan, type Topology } from "./topology.ts";
import { bundleOnce, type NsAgent, type Obj, startAgent } from "./support/agent.ts";
import { startBackends } from "./support/backends.ts";
import { curl } from "./support/client.ts";
import { clusterNodes, nodeObject, serviceObjects } from "./support/cluster.ts";
import { ClusterApi } from "./support/cluster_api.ts";
import { meshConfig, type ModuleName, sharedPsk } from "./support/configs.ts";
import { denoIn, readyLine } from "./support/deno_run.ts";
import { echo } from "./support/echo_client.ts";
import { metrics, metricSum } from "./support/observe.ts";
import { e2eTest } from "./support/scenario.ts";

/**
 * The tunnel runs in every agent (found by mDNS: these topologies have no relays); set false
 * to prove the scenarios without it.
 */
const TUNNEL = true;
const BRIDGE_IP = "169.254.96.16";
const EDGE_HEALTH = "edgemesh.kubeedge.io/edge-health";

const bundle = bundleOnce();

/** Starts agents with `modules` (plus the tunnel when TUNNEL) on `nodes`, waits for ready. */
async function startMesh(
  topo: Topology,
  nodes: string[],
  modules: ModuleName[],
  extra: Obj = {},
): Promise<NsAgent[]> {
  const psk = await sharedPsk(topo);
  const b = await bundle();
  const agents = await Promise.all(nodes.map((n) =>
    startAgent(topo, n, {
      bundle: b,
      extraRead: [psk.dir],
      config: meshConfig(topo, {
        pskPath: psk.path,
        modules: TUNNEL ? ["tunnel", ...modules] : modules,
        relays: topo.names("relay"),
        extra,
      }),
    })
  ));
  await Promise.all(agents.map((a) => a.ready(30_000)));
  return agents;
}

interface DigAnswer {
  status: string;
  answers: string[];
}

/** `dig @169.254.96.16 NAME A` inside `from`: the status and the A records. */
async function dig(topo: Topology, from: string, name: string, timeS = 1): Promise<DigAnswer> {
  const r = await topo.exec(from, "dig", [
    `@${BRIDGE_IP}`,
    name,
    "A",
    `+time=${timeS}`,
    "+tries=1",
    "+noall",
    "+comments",
    "+answer",
  ], { check: false });
  const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? `no answer (dig exit ${r.code})`;
  const answers = r.stdout.split("\n").filter((l) => l.trim() && !l.startsWith(";"))
    .map((l) => l.trim().split(/\s+/)).filter((f) => f[3] === "A").map((f) => f[4]);
  return { status, answers };
}

/**
 * `curl http://NAME:PORT/PATH` with the agent's DNS as the only resolver: `--dns-servers`
 * when this curl has c-ares, else the name resolved with dig first and pinned with `--resolve`.
 */
async function curlByName(
  topo: Topology,
  from: string,
  name: string,
  port: number,
  path = "/",
) {
  const url = `http://${name}:${port}${path}`;
  const r = await curl(topo, from, url, { args: ["--dns-servers", BRIDGE_IP] });
  if (!/doesn't support|not built.?in/i.test(r.stderr)) return { ...r, via: "--dns-servers" };
  // Without c-ares, curl resolves with the system resolver only.
  const d = await dig(topo, from, name);
  if (d.answers.length === 0) {
    return { ...r, exit: 6, stderr: `dig ${name}: ${d.status}`, via: "dig" };
  }
  const pinned = await curl(topo, from, url, {
    args: ["--resolve", `${name}:${port}:${d.answers[0]}`],
  });
  return { ...pinned, via: "dig + --resolve" };
}

e2eTest(
  "scenario 1: dig @169.254.96.16 inside a1 answers svc.ns and svc.ns.svc.cluster.local with the ClusterIP, NXDOMAIN for a missing service, and forwards other names to the upstream on the node's loopback",
  issue9({ lans: ["a"], relays: [] }),
  async (topo) => {
    const clusterIP = "198.19.1.10";
    await ClusterApi.start(topo, {
      nodes: ["a1"],
      objects: [
        ...clusterNodes(topo),
        ...serviceObjects({
          namespace: "ns",
          name: "svc",
          clusterIP,
          ports: [{ name: "http", port: 80, targetPort: 8080 }],
          endpoints: [{ node: "a2", ip: topo.ip("a2") }],
        }),
      ],
    });
    // The fake upstream sits where meshConfig points every agent: 127.0.0.1:53 of the node.
    const upstream = denoIn(
      topo,
      "a1",
      new URL("./support/upstream_dns_main.ts", import.meta.url),
      [
        "--host",
        "127.0.0.1",
        "--port",
        "53",
        "--zone",
        "upstream.test",
        "--answer",
        "198.18.200.7",
      ],
      { allow: ["--allow-net", "--unstable-net"], label: "a1: upstream dns" },
    );
    await readyLine(upstream);
    const [a1] = await startMesh(topo, ["a1"], ["dns"]);
    const listening = await a1.waitLog((l) => l.msg === "DNS listening", "DNS listening");
    equal(listening.udpPath, "batched", "the shipped bundle runs the batched UDP path");

    deepEqual(await dig(topo, "a1", "svc.ns"), { status: "NOERROR", answers: [clusterIP] });
    deepEqual(await dig(topo, "a1", "svc.ns.svc.cluster.local"), {
      status: "NOERROR",
      answers: [clusterIP],
    });
    deepEqual(await dig(topo, "a1", "missing.ns.svc.cluster.local"), {
      status: "NXDOMAIN",
      answers: [],
    });
    deepEqual(await dig(topo, "a1", "missing.ns"), { status: "NXDOMAIN", answers: [] });
    deepEqual(await dig(topo, "a1", "www.upstream.test"), {
      status: "NOERROR",
      answers: ["198.18.200.7"],
    });
    ok(
      upstream.stdout.some((l) => l.includes('"www.upstream.test"')),
      "the upstream saw the forwarded question",
    );
    ok(
      !upstream.stdout.some((l) => /"svc\.ns|cluster\.local/.test(l)),
      `cluster names are answered locally, never forwarded: ${upstream.stdout.join(" ")}`,
    );
    deepEqual(await dig(topo, "a1", "nothing.example"), { status: "NXDOMAIN", answers: [] });
  },
  { timeoutMs: 60_000 },
);

e2eTest(
  "scenario 2: a1 reaches a ClusterIP service whose only endpoint is on a2 over the LAN path (HTTP by IP and by name, WebSocket, UDP echo), and status and metrics show path lan and no tunnel",
  issue9({ lans: ["a"], relays: [] }),
  async (topo) => {
    const clusterIP = "198.19.2.10";
    await ClusterApi.start(topo, {
      objects: [
        ...clusterNodes(topo),
        ...serviceObjects({
          namespace: "demo",
          name: "web",
          clusterIP,
          ports: [
            { name: "http", port: 80, targetPort: 8080 },
            { name: "echo", port: 7, targetPort: 7007, protocol: "UDP" },
          ],
          endpoints: [{ node: "a2", ip: topo.ip("a2") }],
        }),
      ],
    });
    await startBackends(topo, "a2", { http: 8080, udp: 7007 });
    const agents = await startMesh(topo, ["a1", "a2"], ["dns", "proxy"]);
    const a1 = agents[0];
    await waitFor(async () => (await a1.admin("/readyz")).status === 200, {
      what: "a1 /readyz",
      timeoutMs: 10_000,
      intervalMs: 100,
    });

    // UDP first, before any TCP connection has taught the proxy that a2 is reachable.
    const u = await echo(topo, "a1", "udp", clusterIP, 7, "ping-1");
    ok(u.ok, `UDP echo through ${clusterIP}:7 (${u.error})`);
    equal(u.reply, "ping-1");

    const byIp = await curl(topo, "a1", `http://${clusterIP}:80/`);
    equal(byIp.status, 200, byIp.stderr);
    equal(byIp.body, "a2");
    for (const name of ["web.demo", "web.demo.svc.cluster.local"]) {
      const byName = await curlByName(topo, "a1", name, 80, "/whoami");
      equal(byName.status, 200, `${name} (${byName.via}): ${byName.stderr}`);
      // The backend sees a1's own address: the kernel path, no relay in between.
      deepEqual(JSON.parse(byName.body).name, "a2");
      equal(JSON.parse(byName.body).remote.split(":")[0], topo.ip("a1"), byName.body);
      console.log(`scenario 2: curl http://${name}/ resolved via ${byName.via}`);
    }
    const w = await echo(topo, "a1", "ws", clusterIP, 80, "hello");
    ok(w.ok, `WebSocket through ${clusterIP}:80 (${w.error})`);
    equal(w.reply, "a2:hello");
    const u2 = await echo(topo, "a1", "udp", clusterIP, 7, "ping-2");
    equal(u2.reply, "ping-2", u2.error);

    const status = await a1.status();
    const web = status.services.find((s: Obj) => s.namespace === "demo" && s.name === "web");
    ok(web, `demo/web in a1's status: ${JSON.stringify(status.services)}`);
    deepEqual(
      web.endpoints.map((e: Obj) => [e.port, e.node, e.path, e.down]).sort(),
      [[7007, "a2", "lan", false], [8080, "a2", "lan", false]],
      "both ports of the endpoint on a2 are reached over the LAN",
    );
    if (!TUNNEL) deepEqual(status.peers, [], "no tunnel peer");
    const m = await metrics(a1);
    // With the tunnel on, a2 may be a peer, but no stream may carry this traffic (both agents'
    // counters: the stream would be opened by a1 and served by a2).
    for (const a of agents) {
      equal(
        metricSum(await metrics(a), "edgemesh_tunnel_streams_total"),
        0,
        `${a.node}: no stream`,
      );
    }
    const lan = metricSum(m, "edgemesh_proxy_endpoint_picks_total", { path: "lan" });
    ok(lan >= 5, `picks on path lan: ${lan}`);
    equal(
      metricSum(m, "edgemesh_proxy_endpoint_picks_total", { path: "tunnel-direct" }) +
        metricSum(m, "edgemesh_proxy_endpoint_picks_total", { path: "tunnel-relay" }) +
        metricSum(m, "edgemesh_proxy_endpoint_picks_total", { path: "tunnel" }),
      0,
      "no connection took the tunnel",
    );
    equal(metricSum(m, "edgemesh_proxy_connect_errors_total"), 0, "no failed attempt");
  },
  { timeoutMs: 60_000 },
);

e2eTest(
  "scenario 7: with nat-a's WAN link cut LAN A keeps resolving and proxying a1 → a2, and a1's agent restarted without its API serves again from its snapshot within 1 s",
  issue9({ lans: ["a"], relays: [], cloud: true }),
  async (topo) => {
    const clusterIP = "198.19.7.10";
    const api = await ClusterApi.start(topo, {
      mode: "cloud",
      nodes: ["a1", "a2"],
      objects: [
        ...clusterNodes(topo),
        ...serviceObjects({
          namespace: "demo",
          name: "web",
          clusterIP,
          ports: [{ name: "http", port: 80, targetPort: 8080 }],
          endpoints: [{ node: "a2", ip: topo.ip("a2") }],
        }),
      ],
    });
    await startBackends(topo, "a2", { http: 8080 });
    const [a1] = await startMesh(topo, ["a1", "a2"], ["dns", "proxy"]);
    const serves = async (from: string) => {
      const d = await dig(topo, from, "web.demo");
      const c = await curl(topo, from, `http://${clusterIP}/`, { maxTimeS: 2 });
      return d.answers[0] === clusterIP && c.body === "a2";
    };
    await waitFor(() => serves("a1"), { what: "a1 → web.demo before the cut", timeoutMs: 10_000 });
    // The agent saves its snapshot shortly after the first sync.
    await waitFor(
      async () => metricSum(await metrics(a1), "edgemesh_cluster_snapshot_writes_total") >= 1,
      { what: "a1's cluster snapshot saved", timeoutMs: 10_000, intervalMs: 100 },
    );

    await topo.cutLink("nat-a");
    const cloud = await curl(topo, "a1", "http://127.0.0.1:10550/api/v1/nodes", { maxTimeS: 1 });
    ok(cloud.status !== 200, "the cloud API is out of reach from LAN A");
    ok(await serves("a1"), "a1 → a2 by name and ClusterIP with the WAN cut");
    // No relays and no bootstrap peers here: a2 can only be found by mDNS.
    const mdnsPeer = async (a: NsAgent) =>
      (await a.status()).peers.some((p: Obj) => p.node === "a2" && p.path === "tunnel-direct");
    if (TUNNEL) {
      await waitFor(() => mdnsPeer(a1), {
        what: "a1 and a2 connected by mDNS with the WAN cut",
        timeoutMs: 15_000,
        intervalMs: 200,
      });
    }
    const byName = await curlByName(topo, "a1", "web.demo", 80);
    equal(byName.body, "a2", byName.stderr);

    // Restart a1's agent with its API gone (connection refused, not just slow).
    await api.stopFor("a1");
    equal(await a1.stop(), 0, "a1 stops cleanly");
    // While the agent is down, clients must fail fast for the first success to be timed well:
    // dig's query to the missing bridge address would wander off to the gateway and wait its
    // full second (so: unreachable locally; once the address is back its local route wins),
    // and a SYN to a ClusterIP not yet intercepted goes to nat-a, whose "net unreachable"
    // answers the kernel rate-limits (so: no limit on nat-a, and a 0.1 s connect timeout for
    // the SYNs that still get no answer). Then one dig and one curl at a time, 25 ms apart,
    // time the first success without loading the machine.
    await topo.exec("a1", "ip", ["route", "add", "unreachable", `${BRIDGE_IP}/32`]);
    await topo.exec("nat-a", "sysctl", ["-qw", "net.ipv4.icmp_ratelimit=0"]);
    const wall0 = Date.now();
    const t0 = performance.now();
    const again = await a1.restart();
    const poll = (what: string, attempt: () => Promise<boolean>) =>
      waitFor(async () => {
        if (!again.proc.running) throw new Error("a1's agent exited");
        return await attempt() ? performance.now() - t0 : 0;
      }, { what, timeoutMs: 10_000, intervalMs: 25 });
    const [dnsMs, curlMs] = await Promise.all([
      poll(
        "dig web.demo after the restart",
        async () => (await dig(topo, "a1", "web.demo", 1)).answers[0] === clusterIP,
      ),
      poll(
        `curl ${clusterIP} after the restart`,
        async () =>
          (await curl(topo, "a1", `http://${clusterIP}/`, {
            maxTimeS: 1,
            args: ["--connect-timeout", "0.1"],
          })).body === "a2",
      ),
    ]);
    const readyLog = await again.waitLog((l) => l.msg === "agent ready", "agent ready");
    const readyMs = Date.parse(readyLog.ts) - wall0;
    console.log(
      `scenario 7: a1 restarted without its API: "agent ready" ${readyMs} ms, dig answered ` +
        `${dnsMs.toFixed(0)} ms, curl ${curlMs.toFixed(0)} ms after process start`,
    );
    ok(
      again.logs().some((l) =>
        l.msg === "serving from the cluster snapshot until the source syncs"
      ),
      "the agent serves from its snapshot",
    );
    ok(
      Math.max(dnsMs, curlMs) <= 1000,
      `serving within 1 s of start (dig ${dnsMs.toFixed(0)} ms, curl ${curlMs.toFixed(0)} ms)`,
    );
    if (TUNNEL) {
      await waitFor(() => mdnsPeer(again), {
        what: "the restarted a1 finds a2 by mDNS with the WAN cut",
        timeoutMs: 15_000,
        intervalMs: 200,
      });
      console.log(
        `scenario 7: the restarted a1 is connected to a2 by mDNS ${
          (performance.now() - t0).toFixed(0)
        } ms after process start`,
      );
    }
  },
  { timeoutMs: 60_000 },
);

e2eTest(
  "scenario 9: five nodes in one NodeUnit split 3|2: the three are never judged unhealthy, the two are by the majority, all healthy after healing; a live node the cloud lost is annotated healthy by one writer and its endpoint stays served",
  singleLan({ nodes: 5, cloud: true }),
  async (topo) => {
    const nodes = topo.names("node");
    const unit = "unit-e2e";
    const labels = { [unit]: "nodeunits.superedge.io" };
    const clusterIP = "198.19.9.10";
    const svc = (ready: boolean) =>
      serviceObjects({
        namespace: "demo",
        name: "on-h3",
        clusterIP,
        ports: [{ name: "http", port: 80, targetPort: 8080 }],
        endpoints: [{ node: "h3", ip: topo.ip("h3"), ready }],
      });
    const api = await ClusterApi.start(topo, {
      mode: "cloud",
      nodes,
      objects: [
        ...clusterNodes(topo, labels),
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { namespace: "kube-system", name: "edge-health-config" },
          data: { "unit-internal-check": "true", "check-units": unit },
        },
        ...svc(true),
      ],
    });
    // Without a gateway the LAN has no default route; ClusterIPs need one to reach OUTPUT.
    await Promise.all(
      nodes.map((n) => topo.exec(n, "ip", ["route", "add", "198.19.0.0/16", "dev", "eth0"])),
    );
    await startBackends(topo, "h3", { http: 8080 });
    const agents = await startMesh(topo, nodes, ["health", "proxy"], {
      modules: {
        edgeHealth: { probeInterval: "500ms", probeTimeout: "200ms", voteTimeout: "1500ms" },
      },
    });
    const byNode = new Map(agents.map((a) => [a.node, a]));
    const annotation = async (n: string) => {
      const o = await api.get("v1", "Node", undefined, n);
      const raw = o?.metadata?.annotations?.[EDGE_HEALTH];
      return raw ? JSON.parse(raw) as Obj : undefined;
    };
    const views = async (a: NsAgent) => {
      const s = await a.status();
      return new Map<string, string>(s.health.members.map((m: Obj) => [m.node, m.verdict]));
    };
    const allHealthy = async () => {
      for (const n of nodes) if ((await annotation(n))?.state !== "healthy") return false;
      for (const a of agents) {
        const v = await views(a);
        if (!nodes.every((n) => v.get(n) === "healthy")) return false;
      }
      return true;
    };
    let t = performance.now();
    await waitFor(allHealthy, { what: "every node healthy", timeoutMs: 20_000, intervalMs: 200 });
    console.log(
      `scenario 9: 5 nodes voted and annotated healthy ${
        (performance.now() - t).toFixed(0)
      } ms after agents were ready`,
    );

    // Watch the three throughout the split: annotations in the cloud and every agent's view.
    const majority = ["h1", "h2", "h3"];
    const minority = ["h4", "h5"];
    const violations: string[] = [];
    let watching = true;
    let rounds = 0;
    /** Set once the majority judged the minority; cleared at healing. */
    let judged = false;
    const watcher = (async () => {
      while (watching) {
        rounds++;
        for (const n of majority) {
          const a = await annotation(n);
          if (a?.state !== "healthy") violations.push(`${n} annotated ${JSON.stringify(a)}`);
        }
        for (const n of judged ? minority : []) {
          const a = await annotation(n);
          if (judged && a?.state !== "unhealthy") {
            violations.push(`${n} annotated ${JSON.stringify(a)} while split`);
          }
        }
        for (const a of agents) {
          const v = await views(a).catch(() => undefined);
          for (const n of majority) {
            if (v?.get(n) === "unhealthy") violations.push(`${a.node} judges ${n} unhealthy`);
          }
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      const atSplit = new Map(agents.map((a) => [a.node, a.logs().length]));
      const split = await topo.partition(majority, minority);
      t = performance.now();
      await waitFor(async () => {
        for (const n of minority) {
          const a = await annotation(n);
          if (a?.state !== "unhealthy" || a.unhealthy < 3) return false;
          const o = await api.get("v1", "Node", undefined, n);
          if (o?.metadata?.annotations?.nodeunhealth !== "yes") return false;
        }
        const v = await views(byNode.get("h1")!);
        return minority.every((n) => v.get(n) === "unhealthy");
      }, { what: "h4 and h5 judged unhealthy", timeoutMs: 15_000, intervalMs: 100 });
      console.log(
        `scenario 9: the majority judged h4, h5 unhealthy ${
          (performance.now() - t).toFixed(0)
        } ms after the 3|2 split`,
      );
      judged = true;
      // Hold the split past two vote timeouts, so every pre-split verdict has expired everywhere.
      const r0 = rounds;
      await waitFor(() => performance.now() - t >= 3000 && rounds >= r0 + 3, {
        what: "the split held for 3 s under watch",
        timeoutMs: 15_000,
        intervalMs: 100,
      });
      for (const n of minority) {
        const m = await metrics(byNode.get(n)!);
        equal(metricSum(m, "edgemesh_health_writer"), 0, `${n} is no writer`);
      }
      // The minority cannot see a majority: it wrote nothing while split.
      for (const n of minority) {
        const a = byNode.get(n)!;
        const wrote = a.logs().slice(atSplit.get(n)).filter((l) => l.msg === "node annotated");
        deepEqual(wrote, [], `${n} wrote no annotation while split`);
      }
      judged = false;
      await split.heal();
      t = performance.now();
      await waitFor(allHealthy, {
        what: "all healthy after healing",
        timeoutMs: 15_000,
        intervalMs: 200,
      });
      console.log(
        `scenario 9: all healthy again ${(performance.now() - t).toFixed(0)} ms after healing`,
      );
    } finally {
      watching = false;
      await watcher;
    }
    deepEqual(
      violations,
      [],
      "h1, h2, h3 never judged unhealthy; h4, h5 stayed unhealthy while split",
    );
    ok(rounds >= 3, `the watcher looked ${rounds} times`);

    // The cloud loses h3 (Ready Unknown, its endpoint not ready) while its peers see it.
    const before = new Map(agents.map((a) => [a.node, a.logs().length]));
    await api.apply(nodeObject("h3", topo.ip("h3"), { ready: "Unknown", labels }));
    for (const o of svc(false)) await api.apply(o);
    t = performance.now();
    const writersOfH3 = () =>
      agents.filter((a) =>
        a.logs().slice(before.get(a.node)).some((l) =>
          l.msg === "node annotated" && l.node === "h3"
        )
      ).map((a) => a.node);
    await waitFor(async () => (await annotation("h3"))?.state === "healthy", {
      what: "h3 annotated healthy again",
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    console.log(
      `scenario 9: h3 (cloud Ready=Unknown) annotated healthy in ${
        (performance.now() - t).toFixed(0)
      } ms`,
    );
    // The API shows the patch before the writer's log line has reached us through its pipe.
    await waitFor(() => writersOfH3().length > 0, {
      what: "the writer's 'node annotated' log line for h3",
      timeoutMs: 5000,
      intervalMs: 50,
    });
    const writers = writersOfH3();
    deepEqual(
      writers,
      ["h1"],
      `exactly one writer annotated h3, the lowest-named healthy node (writers: ${writers})`,
    );
    let gauges = 0;
    for (const a of agents) gauges += metricSum(await metrics(a), "edgemesh_health_writer");
    equal(gauges, 1, "one writer in the group");
    await waitFor(async () => {
      const row = (await byNode.get("h1")!.status()).services.find((x: Obj) => x.name === "on-h3");
      return row?.endpoints[0]?.ready === false && row.endpoints[0].served === true;
    }, { what: "h1's proxy serves h3's not-ready endpoint", timeoutMs: 5000, intervalMs: 100 });
    for (const from of ["h1", "h2", "h4", "h5"]) {
      await waitFor(async () => (await curl(topo, from, `http://${clusterIP}/`)).body === "h3", {
        what: `${from} → ${clusterIP} (only endpoint on h3, not ready in the cloud)`,
        timeoutMs: 5000,
        intervalMs: 100,
      });
    }
  },
  { timeoutMs: 90_000 },
);
