/**
 * Proxy benchmark: TCP throughput (iperf3, 1 and 4 streams) and HTTP (wrk, keep-alive and a
 * new connection per request) through the edgemesh proxy, against haproxy and the direct
 * path, all on loopback in one run. Prints a markdown table; `--json` prints raw numbers.
 *   deno run -A --unstable-net bench/proxy.ts [--rounds 3] [--seconds 3]
 */

import { BENCH_NODE, buildBundle, localService, startBenchAgent } from "./agent.ts";
import {
  fmtStat,
  freePort,
  have,
  ratio,
  rounds,
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
  await Promise.all([waitPort(iperfPort), waitPort(nginxPort), waitPort(hTcp), waitPort(hHttp)]);

  const bundle = await buildBundle(tmp);
  const agent = await startBenchAgent(bundle, [
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
  cleanups.push(agent.stop);
  const ePort = await agent.listener("bench", "iperf", 5201);
  const wPort = await agent.listener("bench", "web", 80);
  const idleRss = await agent.rssBytes();

  const iperfRun = async (port: number, streams: number) => {
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
    const direct = await rounds(ROUNDS, () => iperfRun(iperfPort, streams));
    const hap = await rounds(ROUNDS, () => iperfRun(hTcp, streams));
    const ours = await rounds(ROUNDS, () => iperfRun(ePort, streams));
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
    const hapR: { rps: number; p99: number }[] = [];
    const ourR: { rps: number; p99: number }[] = [];
    for (let i = 0; i < Math.max(3, ROUNDS); i++) {
      hapR.push(await wrkRun(hHttp, close));
      ourR.push(await wrkRun(wPort, close));
    }
    const h = stat(hapR.map((x) => x.rps));
    const o = stat(ourR.map((x) => x.rps));
    const hp = stat(hapR.map((x) => x.p99));
    const op = stat(ourR.map((x) => x.p99));
    rows.push({
      figure: close
        ? "HTTP, new connection per request (wrk -c50)"
        : "HTTP keep-alive (wrk -t2 -c50)",
      ours: `${fmtStat(o, "req/s", 0)}, p99 ${op.median.toFixed(2)} ms`,
      reference: `haproxy ${fmtStat(h, "req/s", 0)}, p99 ${hp.median.toFixed(2)} ms`,
      ratio: `${ratio(o, h)} req/s, ${ratio(op, hp)} p99`,
      target: close ? "≥ 0.6× haproxy" : "≥ 0.9× req/s, p99 ≤ 1.5×",
      met: close
        ? o.median >= 0.6 * h.median
        : o.median >= 0.9 * h.median && op.median <= 1.5 * hp.median,
    });
  }
  const loadedRss = await agent.rssBytes();
  rows.push({
    figure: "agent RSS (proxy only), idle / after the load above",
    ours: `${(idleRss / 1048576).toFixed(0)} MiB / ${(loadedRss / 1048576).toFixed(0)} MiB`,
    reference: "",
    ratio: "",
    target: "idle ≤ 120 MB, loaded ≤ 200 MB",
    met: idleRss <= 120e6 && loadedRss <= 200e6,
  });
  rows.push({
    figure: "start to /readyz 200 (manifests)",
    ours: `${agent.startMs.toFixed(0)} ms`,
    reference: "",
    ratio: "",
    target: "< 1 s",
    met: agent.startMs < 1000,
  });
  if (args.includes("--json")) console.log(JSON.stringify(rows));
  else console.log(table(rows));
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
