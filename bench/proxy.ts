/**
 * Proxy benchmark: TCP throughput (iperf3, 1 and 4 streams) and HTTP (wrk, keep-alive and a
 * new connection per request) through the edgemesh proxy, against haproxy and the direct
 * path, all on loopback in one run; rounds alternate between the contenders so that load
 * from elsewhere on the machine hits them alike. HTTP has two haproxy references: http mode
 * (the target's reference; it keeps its connections to nginx open across client connections)
 * and tcp mode (the same L4 work as ours). The agent's start and idle memory are measured on
 * the first start of a freshly built bundle and on a second start, when Deno has cached it.
 * Prints a markdown table; `--json` prints the rows as JSON.
 *   deno run -A --unstable-net bench/proxy.ts [--rounds 3] [--seconds 3]
 */

import { BENCH_NODE, buildBundle, localService, startBenchAgent } from "./agent.ts";
import {
  fmtStat,
  freePort,
  have,
  ratio,
  type Row,
  run,
  spawn,
  stat,
  table,
  waitPort,
} from "./lib.ts";

const args = Deno.args;
const ROUNDS = Number(args[args.indexOf("--rounds") + 1]) || 3;
const SECONDS = Number(args[args.indexOf("--seconds") + 1]) || 3;

for (const tool of ["iperf3", "wrk", "haproxy", "nginx"]) {
  if (!(await have(tool))) {
    throw new Error(
      `${tool} is not installed (apt-get install -y ${tool === "nginx" ? "nginx-light" : tool})`,
    );
  }
}

const tmp = await Deno.makeTempDir({ prefix: "edgemesh-bench-proxy-" });
const cleanups: (() => Promise<void>)[] = [];
// Stopped by bench/run.ts on its time limit: stop the helpers and remove the temp dirs.
Deno.addSignalListener("SIGTERM", async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  Deno.exit(143);
});
try {
  // Backends: iperf3 and nginx.
  const iperfPort = freePort();
  const iperf = spawn("iperf3", ["-s", "-B", "127.0.0.1", "-p", String(iperfPort)]);
  cleanups.push(iperf.stop);
  const nginxPort = freePort();
  await Deno.writeTextFile(
    `${tmp}/nginx.conf`,
    `worker_processes 1; daemon off; pid ${tmp}/nginx.pid; error_log ${tmp}/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:${nginxPort}; location / { return 200 "hello from nginx\\n"; } } }`,
  );
  const nginx = spawn("nginx", ["-c", `${tmp}/nginx.conf`, "-p", tmp]);
  cleanups.push(nginx.stop);
  // haproxy, tcp mode for iperf3 and http mode for nginx, 64 KiB buffers.
  const hTcp = freePort();
  const hHttp = freePort();
  const hTcpWeb = freePort();
  await Deno.writeTextFile(
    `${tmp}/haproxy.cfg`,
    `global
  maxconn 8000
  tune.bufsize 65536
defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend ftcp
  mode tcp
  bind 127.0.0.1:${hTcp}
  default_backend btcp
backend btcp
  mode tcp
  server s1 127.0.0.1:${iperfPort}
frontend ftcpweb
  mode tcp
  bind 127.0.0.1:${hTcpWeb}
  default_backend btcpweb
backend btcpweb
  mode tcp
  server s1 127.0.0.1:${nginxPort}
frontend fhttp
  mode http
  bind 127.0.0.1:${hHttp}
  default_backend bhttp
backend bhttp
  mode http
  http-reuse always
  server s1 127.0.0.1:${nginxPort}
`,
  );
  const haproxy = spawn("haproxy", ["-f", `${tmp}/haproxy.cfg`, "-db"]);
  cleanups.push(haproxy.stop);
  await Promise.all([
    waitPort(iperfPort),
    waitPort(nginxPort),
    waitPort(hTcp),
    waitPort(hHttp),
    waitPort(hTcpWeb),
  ]);

  const bundle = await buildBundle(tmp);
  const startAgent = () =>
    startBenchAgent(bundle, [
      BENCH_NODE,
      ...localService("iperf", 5201, "tcp", iperfPort),
      ...localService("web", 80, "http", nginxPort),
    ], {
      modules: {
        edgeDNS: { enable: false },
        edgeTunnel: { enable: false },
        edgeHealth: { enable: false },
        edgeProxy: { listenAddress: "127.0.0.1", intercept: false },
      },
    });
  // First start of a new bundle: Deno parses and caches the 3–4 MB file; the memory this
  // takes is freed but stays in the process (malloc keeps it). The second start is what every
  // restart of an installed agent sees.
  const cold = await startAgent();
  cleanups.push(cold.stop);
  await settle();
  const coldRss = await cold.rssBytes();
  await cold.stop();
  const agent = await startAgent();
  cleanups.push(agent.stop);
  const ePort = await agent.listener("bench", "iperf", 5201);
  const wPort = await agent.listener("bench", "web", 80);
  await settle();
  const idleRss = await agent.rssBytes();

  const iperfRun = async (port: number, streams: number): Promise<number> => {
    for (let attempt = 1;; attempt++) {
      try {
        return await iperfOnce(port, streams);
      } catch (err) {
        // iperf3 serves one test at a time and may still be finishing the previous one.
        if (attempt >= 5 || !/busy/i.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 300 * attempt));
      }
    }
  };
  const iperfOnce = async (port: number, streams: number) => {
    const r = await run("iperf3", [
      "-c",
      "127.0.0.1",
      "-p",
      String(port),
      "-t",
      String(SECONDS),
      "-P",
      String(streams),
      "-J",
    ], {
      timeoutMs: (SECONDS + 20) * 1000,
    });
    const j = JSON.parse(r.out.slice(r.out.indexOf("{")));
    if (j.error) throw new Error(`iperf3: ${j.error}`);
    return j.end.sum_received.bits_per_second / 1e9;
  };
  const wrkRun = async (port: number, close: boolean) => {
    const a = ["-t2", "-c50", `-d${SECONDS}s`, "--latency", `http://127.0.0.1:${port}/`];
    if (close) a.unshift("-H", "Connection: close");
    const r = await run("wrk", a, { timeoutMs: (SECONDS + 20) * 1000 });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.out)?.[1]);
    const p99txt = /\s99%\s+([\d.]+)(us|ms|s)/.exec(r.out);
    const p99 = p99txt
      ? Number(p99txt[1]) * (p99txt[2] === "us" ? 0.001 : p99txt[2] === "s" ? 1000 : 1)
      : NaN;
    if (!Number.isFinite(rps)) throw new Error(`wrk output not understood: ${r.out}`);
    return { rps, p99 };
  };

  const rows: Row[] = [];
  for (const streams of [1, 4]) {
    const r = await interleaved([iperfPort, hTcp, ePort], (port) => iperfRun(port, streams));
    const [direct, hap, ours] = r.map(stat);
    rows.push({
      figure: `TCP throughput, ${streams} stream${streams > 1 ? "s" : ""} (iperf3)`,
      ours: fmtStat(ours, "Gbit/s"),
      reference: `haproxy ${fmtStat(hap, "Gbit/s")}; direct ${fmtStat(direct, "Gbit/s")}`,
      ratio: `${ratio(ours, hap)} haproxy, ${ratio(ours, direct)} direct`,
      target: "≥ 1.0× haproxy",
      met: ours.median >= hap.median,
    });
  }
  for (const close of [false, true]) {
    const [dirR, hapR, hapTcpR, ourR] = await interleaved(
      [nginxPort, hHttp, hTcpWeb, wPort],
      (port) => wrkRun(port, close),
    );
    const h = stat(hapR.map((x) => x.rps));
    const o = stat(ourR.map((x) => x.rps));
    const ht = stat(hapTcpR.map((x) => x.rps));
    const d = stat(dirR.map((x) => x.rps));
    const hp = stat(hapR.map((x) => x.p99));
    const op = stat(ourR.map((x) => x.p99));
    rows.push({
      figure: close
        ? "HTTP, new connection per request (wrk -t2 -c50, Connection: close)"
        : "HTTP keep-alive (wrk -t2 -c50)",
      ours: `${fmtStat(o, "req/s", 0)}, p99 ${op.median.toFixed(2)} ms`,
      reference: `haproxy http mode ${fmtStat(h, "req/s", 0)}, p99 ${
        hp.median.toFixed(2)
      } ms; haproxy tcp mode ${fmtStat(ht, "req/s", 0)}; direct nginx ${fmtStat(d, "req/s", 0)}`,
      ratio: `${ratio(o, h)} req/s, ${ratio(op, hp)} p99 (vs http mode); ${
        ratio(o, ht)
      } tcp mode; ${ratio(o, d)} direct`,
      target: close ? "≥ 0.6× haproxy" : "≥ 0.9× req/s, p99 ≤ 1.5×",
      met: close
        ? o.median >= 0.6 * h.median
        : o.median >= 0.9 * h.median && op.median <= 1.5 * hp.median,
    });
  }
  await settle();
  const loadedRss = await agent.rssBytes();
  const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
  rows.push({
    figure: "agent RSS (proxy only): idle / after the load above",
    ours: `${mib(idleRss)} / ${mib(loadedRss)}`,
    reference: `first start of a new bundle: idle ${mib(coldRss)}`,
    ratio: "",
    target: "idle ≤ 120 MB, loaded ≤ 200 MB",
    met: idleRss <= 120e6 && loadedRss <= 200e6,
  });
  // Every module the agent has, on loopback (the tunnel without mDNS or hole punching).
  const all = await startBenchAgent(bundle, [
    BENCH_NODE,
    ...localService("iperf", 5201, "tcp", iperfPort),
    ...localService("web", 80, "http", nginxPort),
  ], {
    modules: {
      edgeDNS: { enable: true, listenAddress: ["127.0.0.1"], listenPort: freePort() },
      edgeProxy: {
        listenAddress: "127.0.0.1",
        intercept: false,
        socks5Proxy: { enable: true, listenAddress: "127.0.0.1", listenPort: freePort() },
      },
      edgeHealth: { enable: true, listenAddress: "127.0.0.1", listenPort: freePort() },
      edgeTunnel: {
        enable: true,
        listenAddress: ["127.0.0.1"],
        listenPort: freePort(),
        mdns: { enable: false },
        enableHolePunch: false,
        psk: { enable: false },
      },
      edgeGateway: { enable: true, includeIP: ["127.0.0.1"] },
    },
  });
  cleanups.push(all.stop);
  await settle();
  const allRss = await all.rssBytes();
  const modules = Object.keys(((await all.status()).modules ?? {}) as Record<string, unknown>);
  await all.stop();
  rows.push({
    figure: `agent RSS, idle, every module on (${modules.join(", ")})`,
    ours: mib(allRss),
    reference: "",
    ratio: "",
    target: "idle ≤ 120 MB",
    met: allRss <= 120e6,
  });
  rows.push({
    figure: "start to /readyz 200 (manifests)",
    ours: `${agent.startMs.toFixed(0)} ms`,
    reference: `first start of a new bundle: ${cold.startMs.toFixed(0)} ms`,
    ratio: "",
    target: "< 1 s",
    met: agent.startMs < 1000 && cold.startMs < 1000,
  });
  if (args.includes("--json")) console.log(JSON.stringify(rows));
  else {
    console.log(table(rows));
    console.log(`
Commands (ports vary per run): \`iperf3 -s -B 127.0.0.1\`; \`iperf3 -c 127.0.0.1 -p PORT -t ${SECONDS} -P 1|4 -J\`;
\`wrk -t2 -c50 -d${SECONDS}s --latency [-H "Connection: close"] http://127.0.0.1:PORT/\`; nginx 1 worker,
\`return 200\` of 17 bytes; haproxy \`tune.bufsize 65536\`, default threads (one per CPU), tcp mode for
iperf3 and for the "tcp mode" HTTP reference, http mode with \`http-reuse always\` for the HTTP
reference; the agent is the bundle (\`scripts/bundle.ts\`) with the proxy on 127.0.0.1, a manifests
folder as the cluster source, one local endpoint per service. Rounds alternate between the
contenders; ${Math.max(3, ROUNDS)} rounds of ${SECONDS} s each.`);
  }
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}

/** `ROUNDS` rounds; in each, every contender runs once, in turn. */
async function interleaved<T>(ports: number[], fn: (port: number) => Promise<T>): Promise<T[][]> {
  const out: T[][] = ports.map(() => []);
  for (let i = 0; i < Math.max(3, ROUNDS); i++) {
    for (let k = 0; k < ports.length; k++) out[k].push(await fn(ports[k]));
  }
  return out;
}

/** Lets timers and the garbage collector settle before a memory reading. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 500));
}
