/**
 * `deno task demo`: a small edge cluster on this machine, no root, loopback only.
 *
 *   relay-1 127.0.0.11   relay-2 127.0.0.12      (relay nodes)
 *   edge-a  127.0.0.21 ──tunnel via relay──▶ edge-b 127.0.0.22 (runs the "hello" pod)
 *
 * Four agents read one cluster from a manifests folder. The demo shows, with the commands a
 * user would type: a service name answered by edge-a's DNS; an HTTP request from edge-a to
 * the pod on edge-b through the relay (via edge-a's SOCKS5 port); the relay killed and the
 * next request going through the standby relay; the health vote noticing the dead relay.
 * Then it stops everything it started. Finishes in well under a minute.
 */

import { Buffer } from "node:buffer";
import dnsPacket from "dns-packet";
import { stringify } from "yaml";
import { renderStatus } from "../mod/admin/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DOMAIN = "cluster.local";
const CLUSTER_IP = "198.19.0.20";

interface DemoNode {
  name: string;
  ip: string;
  relay: boolean;
}
const NODES: DemoNode[] = [
  { name: "relay-1", ip: "127.0.0.11", relay: true },
  { name: "relay-2", ip: "127.0.0.12", relay: true },
  { name: "edge-a", ip: "127.0.0.21", relay: false },
  { name: "edge-b", ip: "127.0.0.22", relay: false },
];
const EDGE_A = NODES[2];
const EDGE_B = NODES[3];
const DNS_PORT = 10053;
const SOCKS_PORT = 10800;

const color = Deno.stdout.isTerminal();
const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
const step = (n: number, title: string) => console.log(`\n${paint("1;36", `[${n}] ${title}`)}`);
const say = (s: string) => console.log(`    ${s}`);
const cmd = (s: string) => console.log(`    ${paint("2", "$")} ${paint("33", s)}`);
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

interface Agent {
  node: DemoNode;
  child: Deno.ChildProcess;
  admin: string;
  exited: Promise<number>;
  log: string[];
}

function manifests(backendPort: number): unknown[] {
  const nodes = NODES.map((n) => ({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: n.name, labels: { "kubernetes.io/hostname": n.name } },
    status: {
      addresses: [{ type: "InternalIP", address: n.ip }],
      conditions: [{ type: "Ready", status: "True" }],
    },
  }));
  return [
    ...nodes,
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "hello", namespace: "demo" },
      spec: {
        clusterIP: CLUSTER_IP,
        ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: backendPort }],
      },
    },
    {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: "hello-1",
        namespace: "demo",
        labels: { "kubernetes.io/service-name": "hello" },
      },
      addressType: "IPv4",
      ports: [{ name: "http", port: backendPort, protocol: "TCP" }],
      endpoints: [{ addresses: [EDGE_B.ip], nodeName: EDGE_B.name, conditions: { ready: true } }],
    },
  ];
}

function agentConfig(n: DemoNode, dir: string): Record<string, unknown> {
  const isA = n === EDGE_A;
  return {
    nodeName: n.name,
    logLevel: "info",
    kubeAPIConfig: { manifestDir: `${dir}/manifests` },
    commonConfig: { stateDir: `${dir}/state-${n.name}`, adminAddress: `${n.ip}:10551` },
    modules: {
      edgeDNS: isA
        ? { listenAddress: n.ip, listenPort: DNS_PORT, upstreamServers: ["127.0.0.1:9"] }
        : { enable: false },
      edgeProxy: {
        enable: isA,
        listenAddress: n.ip,
        intercept: false,
        // Every "node" shares this machine's loopback, so the kernel could reach edge-b
        // directly; the demo asks for the tunnel so that the relay path is what you see.
        lanDirect: false,
        socks5Proxy: { enable: isA, listenAddress: n.ip, listenPort: SOCKS_PORT },
      },
      edgeTunnel: {
        listenAddress: [n.ip],
        listenPort: 20006,
        mdns: { enable: false },
        enableHolePunch: false,
        relayOnly: !n.relay,
        psk: { enable: true, path: `${dir}/psk` },
        relayNodes: NODES.filter((r) => r.relay).map((r) => ({
          nodeName: r.name,
          advertiseAddress: [r.ip],
        })),
      },
      edgeHealth: {
        listenAddress: n.ip,
        listenPort: 51005,
        probeInterval: "1s",
        probeTimeout: "300ms",
        probeRetries: 1,
        voteTimeout: "3s",
      },
    },
  };
}

async function startAgent(n: DemoNode, dir: string): Promise<Agent> {
  const config = `${dir}/${n.name}.yaml`;
  await Deno.writeTextFile(config, stringify(agentConfig(n, dir)));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", `${ROOT}main.ts`, "agent", "--config", config],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  let admin = "";
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  const pump = async (s: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) !== -1) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        log.push(line);
        if (log.length > 400) log.shift();
        if (!admin && line.includes('"agent ready"')) {
          admin = JSON.parse(line).admin;
          readyResolve();
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status.then(async (s) => {
    await pumps;
    return s.code;
  });
  await Promise.race([
    ready,
    exited.then((code) => {
      throw new Error(
        `agent ${n.name} exited with ${code} before it was ready:\n${log.slice(-20).join("\n")}`,
      );
    }),
    deadline(20_000, `agent ${n.name} to become ready`),
  ]);
  return { node: n, child, admin, exited, log };
}

function deadline(ms: number, what: string): Promise<never> {
  return new Promise((_, rej) =>
    setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  );
}

async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const end = performance.now() + ms;
  while (true) {
    try {
      const v = await fn();
      if (v) return v;
    } catch { /* not yet */ }
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// deno-lint-ignore no-explicit-any -- the status document is JSON read field by field
async function status(a: Agent): Promise<Record<string, any>> {
  return await (await fetch(`http://${a.admin}/api/v1/status`, {
    signal: AbortSignal.timeout(2000),
  })).json();
}

/** The proxy's endpoint picks by path, from /metrics: how requests really travelled. */
async function picks(a: Agent): Promise<string[]> {
  const text = await (await fetch(`http://${a.admin}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith("edgemesh_proxy_endpoint_picks_total{"));
}

/** One DNS query over UDP (what `dig` does). */
async function dnsQuery(server: string, port: number, name: string): Promise<string[]> {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const id = Math.floor(Math.random() * 65535);
    const q = dnsPacket.encode({
      type: "query",
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "A", name }],
    });
    await sock.send(q, { transport: "udp", hostname: server, port });
    const [data] = await Promise.race([sock.receive(), deadline(2000, "a DNS answer")]);
    const res = dnsPacket.decode(Buffer.from(data));
    return (res.answers ?? []).filter((a) => a.type === "A").map((a) =>
      String((a as { data?: unknown }).data)
    );
  } finally {
    sock.close();
  }
}

/** An HTTP GET through a SOCKS5 proxy (what `curl --socks5-hostname` does). */
async function httpViaSocks(
  proxy: string,
  port: number,
  host: string,
  hostPort: number,
): Promise<string> {
  const conn = await Deno.connect({ hostname: proxy, port });
  try {
    const buf = new Uint8Array(65536);
    const readAtLeast = async (n: number) => {
      let got = 0;
      while (got < n) {
        const r = await conn.read(buf.subarray(got));
        if (r === null) throw new Error("SOCKS5 proxy closed the connection");
        got += r;
      }
      return buf.slice(0, got);
    };
    await conn.write(new Uint8Array([5, 1, 0]));
    await readAtLeast(2);
    const name = new TextEncoder().encode(host);
    await conn.write(
      new Uint8Array([5, 1, 0, 3, name.length, ...name, hostPort >> 8, hostPort & 255]),
    );
    const rep = await readAtLeast(10);
    if (rep[1] !== 0) throw new Error(`SOCKS5 reply code ${rep[1]}`);
    await conn.write(
      new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    let text = "";
    while (true) {
      const r = await conn.read(buf);
      if (r === null) break;
      text += new TextDecoder().decode(buf.subarray(0, r));
    }
    const body = text.indexOf("\r\n\r\n");
    if (!text.startsWith("HTTP/1.1 200") || body < 0) {
      throw new Error(`no HTTP answer through the SOCKS5 port (got ${JSON.stringify(text)})`);
    }
    return text.slice(body + 4).trim();
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

async function main(): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "edgemesh-demo-" });
  const agents: Agent[] = [];
  const backend = Deno.serve(
    { hostname: EDGE_B.ip, port: 0, onListen: () => {} },
    () => new Response(`hello from pod hello-b on node edge-b\n`),
  );
  try {
    console.log(
      paint("1", "edgemesh demo") +
        " — four agents on this machine's loopback, no root, nothing leaves it.",
    );
    step(1, "Start a cluster: two relay nodes and two edge nodes");
    await Deno.mkdir(`${dir}/manifests`);
    await Deno.writeTextFile(
      `${dir}/manifests/cluster.yaml`,
      manifests(backend.addr.port).map((m) => stringify(m)).join("---\n"),
    );
    await Deno.writeTextFile(
      `${dir}/psk`,
      btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))) + "\n",
    );
    say(
      `cluster from ${dir}/manifests: 4 Nodes, Service demo/hello (${CLUSTER_IP}:80), its pod on edge-b`,
    );
    for (const n of NODES) {
      cmd(
        `edgemesh agent --config ${n.name}.yaml    # ${n.name} on ${n.ip}${
          n.relay ? ", relay" : ""
        }`,
      );
    }
    agents.push(...await Promise.all(NODES.map((n) => startAgent(n, dir))));
    const a = agents[2];
    say(`all agents ready after ${elapsed()}`);
    const relays = await waitFor(async () => {
      const s = await status(a);
      const rs = (s.relays ?? []) as {
        node: string;
        role: string;
        rttMs: number;
        reserved: boolean;
      }[];
      return rs.filter((r) => r.reserved).length >= 2 ? rs : undefined;
    }, "edge-a to reserve slots on both relays");
    for (const r of relays) {
      say(`edge-a → ${r.node}: ${r.role}, rtt ${r.rttMs?.toFixed?.(1) ?? r.rttMs} ms, reserved`);
    }
    // edge-b must hold its reservations too: a relay can only reach nodes that reserved on it.
    await waitFor(async () => {
      const rs = ((await status(agents[3])).relays ?? []) as { reserved: boolean }[];
      return rs.filter((r) => r.reserved).length >= 2 ? true : undefined;
    }, "edge-b to reserve slots on both relays");
    await waitFor(async () => {
      const ms = ((await status(a)).health?.members ?? []) as { verdict: string }[];
      return ms.length === NODES.length && ms.every((x) => x.verdict === "healthy");
    }, "the health vote to see every node healthy");
    say(`health: all ${NODES.length} nodes voted healthy after ${elapsed()}`);

    step(2, "Resolve a service name with edge-a's DNS");
    cmd(`dig @${EDGE_A.ip} -p ${DNS_PORT} hello.demo.svc.${DOMAIN}`);
    say(`→ ${(await dnsQuery(EDGE_A.ip, DNS_PORT, `hello.demo.svc.${DOMAIN}`)).join(", ")}`);
    cmd(`dig @${EDGE_A.ip} -p ${DNS_PORT} hello.demo`);
    say(
      `→ ${
        (await dnsQuery(EDGE_A.ip, DNS_PORT, "hello.demo")).join(", ")
      }   (short form, no search path needed)`,
    );

    step(3, "HTTP from edge-a to the pod on edge-b, through a relay");
    cmd(`curl --socks5-hostname ${EDGE_A.ip}:${SOCKS_PORT} http://hello.demo/`);
    say(`→ ${await httpViaSocks(EDGE_A.ip, SOCKS_PORT, "hello.demo", 80)}`);
    const peer = await waitFor(async () => {
      const s = await status(a);
      return (s.peers as { node: string; path: string; relay?: string }[]).find((p) =>
        p.node === "edge-b" && p.path
      );
    }, "edge-a's view of edge-b");
    say(
      `edge-a reaches edge-b via ${
        peer.path === "tunnel-relay" ? `relay ${peer.relay}` : peer.path
      }`,
    );
    for (const l of await picks(a)) say(l);
    cmd(`edgemesh status --admin ${a.admin}`);
    const rendered = renderStatus(await status(a), { color });
    const keep = rendered.split("\n").filter((l) => l.trim() !== "");
    for (const l of keep) console.log(`      ${l}`);

    step(4, "Kill the relay in use; the next request takes the standby");
    const primaryName = peer.relay ?? (relays.find((r) => r.role === "primary")?.node ?? "relay-1");
    const primary = agents.find((x) => x.node.name === primaryName)!;
    cmd(`kill -9 <${primaryName}>`);
    const killedAt = performance.now();
    primary.child.kill("SIGKILL");
    await primary.exited;
    const body = await waitFor(
      () => httpViaSocks(EDGE_A.ip, SOCKS_PORT, "hello.demo", 80).catch(() => undefined),
      "a request through the standby relay",
      10_000,
    );
    const failoverMs = performance.now() - killedAt;
    say(`→ ${body}   (${failoverMs.toFixed(0)} ms after the kill)`);
    const after = await status(a);
    const now = (after.peers as { node: string; path: string; relay?: string }[]).find((p) =>
      p.node === "edge-b"
    );
    say(`edge-a now reaches edge-b via ${now?.relay ? `relay ${now.relay}` : now?.path}`);
    for (const l of await picks(a)) say(l);

    step(5, `Health: the others vote ${primaryName} unhealthy`);
    const members = await waitFor(
      async () => {
        const s = await status(a);
        const ms = (s.health?.members ?? []) as {
          node: string;
          verdict: string;
          healthy: number;
          unhealthy: number;
        }[];
        return ms.find((m) => m.node === primaryName && m.verdict === "unhealthy") ? ms : undefined;
      },
      `a vote on ${primaryName}`,
      15_000,
    );
    say(
      `voted unhealthy ${
        ((performance.now() - killedAt) / 1000).toFixed(1)
      } s after the kill (probes every 1 s):`,
    );
    for (const m of members) {
      say(
        `${m.node.padEnd(8)} ${
          m.verdict.padEnd(9)
        } (${m.healthy} ok / ${m.unhealthy} failed probes)`,
      );
    }

    step(6, "Stop everything");
    return 0;
  } catch (err) {
    console.error(paint("31", `\ndemo failed: ${(err as Error).message}`));
    for (const ag of agents) {
      console.error(paint("2", `--- last log lines of ${ag.node.name} ---`));
      console.error(ag.log.slice(-15).join("\n"));
    }
    return 1;
  } finally {
    await Promise.all(agents.map(async (ag) => {
      try {
        ag.child.kill("SIGTERM");
      } catch { /* already gone */ }
      await ag.exited;
    }));
    await backend.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    say(`all agents stopped, ${dir} removed; total ${elapsed()}`);
  }
}

if (import.meta.main) Deno.exit(await main());
