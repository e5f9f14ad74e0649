/**
 * Benchmark (not a test): our DNS server against dnsmasq with dnsperf, same machine, same
 * run. Two data sets: cluster names (dnsmasq serves the same names from a hosts file) and
 * upstream names answered from each server's cache (both forward to one fake upstream on
 * loopback and are warmed first). For each: the highest QPS dnsperf reaches, and latency
 * percentiles at a fixed 5k qps. Our server runs in its own Deno process, as in production.
 *
 * Run: `deno run --unstable-net -A bench/dns.ts [--seconds 5] [--services 500]`
 * Needs `dnsperf` and `dnsmasq` (Debian packages); prints why and exits 0 when absent.
 * Bounded: every dnsperf run has -l, every process is killed in `finally`.
 */

import { ClusterStore, StoreCatalog } from "../mod/kube/mod.ts";
import { DnsServer } from "../mod/dns/mod.ts";
import { FakeUpstream } from "../mod/dns/test_support.ts";
import { nullLogger } from "../mod/log/mod.ts";
import { Registry } from "../mod/metrics/mod.ts";
import { freePort, have, type Row, table, waitPort } from "./lib.ts";

const DOMAIN = "cluster.local";
const NSNAME = "bench";

function clusterIP(i: number): string {
  return `198.19.${(i >> 8) & 0xff}.${i & 0xff}`;
}

function clusterNames(services: number): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < services; i++) {
    out.push([`svc-${i}.${NSNAME}.svc.${DOMAIN}`, clusterIP(i)]);
    if (i % 4 === 0) out.push([`svc-${i}.${NSNAME}`, clusterIP(i)]);
  }
  return out;
}

function upstreamNames(n: number): [string, string][] {
  return Array.from({ length: n }, (_, i) => [`h${i}.bench.example`, `192.0.2.${i % 250}`]);
}

/** The child process: our server with a synthetic catalog of `services` services. */
async function serve(
  port: number,
  upstream: string,
  services: number,
  udpPath: "portable" | "batched",
): Promise<void> {
  const store = new ClusterStore();
  store.batch(() => {
    for (let i = 0; i < services; i++) {
      store.upsert("services", {
        metadata: { name: `svc-${i}`, namespace: NSNAME },
        spec: { clusterIP: clusterIP(i), ports: [{ name: "http", port: 80 }] },
      });
    }
  });
  const server = new DnsServer({
    logger: nullLogger(),
    metrics: new Registry(),
    catalog: new StoreCatalog(store),
  }, {
    listenAddresses: ["127.0.0.1"],
    listenPort: port,
    clusterDomain: DOMAIN,
    ttlMs: 30_000,
    upstreamServers: [upstream],
    udpPath,
  });
  const ac = new AbortController();
  Deno.addSignalListener("SIGTERM", () => ac.abort());
  await server.start(ac.signal);
  await new Promise((r) => ac.signal.addEventListener("abort", r));
  await server.stop();
}

interface PerfResult {
  qps: number;
  avgMs: number;
  lost: number;
}

async function dnsperf(
  port: number,
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<string> {
  const r = await new Deno.Command("dnsperf", {
    args: ["-s", "127.0.0.1", "-p", String(port), "-d", file, ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  if (r.code !== 0) throw new Error(`dnsperf failed (${r.code}): ${text.slice(-500)}`);
  return text;
}

function parsePerf(text: string): PerfResult {
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    lost: num(/Queries lost:\s+(\d+)/),
  };
}

/** Percentiles from dnsperf -v lines ("> NOERROR name A 0.000123"). */
function percentiles(text: string): { p50: number; p99: number; n: number } {
  const lat: number[] = [];
  for (const m of text.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)) lat.push(Number(m[1]) * 1000);
  lat.sort((a, b) => a - b);
  const at = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), n: lat.length };
}

interface Measured {
  max: PerfResult;
  p50: number;
  p99: number;
}

async function measure(port: number, file: string, seconds: number): Promise<Measured> {
  // The fixed rate first: right after a flood the server is still draining its backlog.
  const fixed = await dnsperf(
    port,
    file,
    ["-l", String(seconds), "-c", "1", "-Q", "5000", "-v"],
    (seconds + 15) * 1000,
  );
  const { p50, p99 } = percentiles(fixed);
  const max = parsePerf(
    await dnsperf(
      port,
      file,
      ["-l", String(seconds), "-c", "4", "-q", "200"],
      (seconds + 15) * 1000,
    ),
  );
  return { max, p50, p99 };
}

/** SIGTERM and wait; a child that already exited is fine. */
async function stopChild(c: Deno.ChildProcess): Promise<void> {
  try {
    c.kill("SIGTERM");
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
  await c.status;
}

export interface DnsBenchOptions {
  seconds: number;
  services: number;
}

export async function runDnsBench(opts: DnsBenchOptions): Promise<Row[] | undefined> {
  for (const tool of ["dnsperf", "dnsmasq"]) {
    if (!(await have(tool))) {
      console.log(
        `DNS benchmark skipped: ${tool} is not installed (apt-get install dnsperf dnsmasq)`,
      );
      return undefined;
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "edgemesh-dns-bench-" });
  const up = new FakeUpstream({
    records: Object.fromEntries(
      upstreamNames(200).map((
        [n, ip],
      ) => [n, [{ name: n, type: "A" as const, ttl: 3600, data: ip }]]),
    ),
  });
  const children: Deno.ChildProcess[] = [];
  try {
    const cluster = clusterNames(opts.services);
    const clusterFile = `${dir}/cluster.txt`;
    const upstreamFile = `${dir}/upstream.txt`;
    const hostsFile = `${dir}/hosts`;
    await Deno.writeTextFile(clusterFile, cluster.map(([n]) => `${n} A`).join("\n") + "\n");
    await Deno.writeTextFile(
      upstreamFile,
      upstreamNames(200).map(([n]) => `${n} A`).join("\n") + "\n",
    );
    await Deno.writeTextFile(hostsFile, cluster.map(([n, ip]) => `${ip} ${n}`).join("\n") + "\n");

    const paths = ["portable", "batched"] as const;
    const ports: Record<string, number> = {};
    for (const path of paths) {
      ports[path] = freePort();
      children.push(
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--unstable-net",
            "-A",
            new URL(import.meta.url).pathname,
            "--serve",
            String(ports[path]),
            up.address,
            String(opts.services),
            path,
          ],
          stdin: "null",
          stdout: "inherit",
          stderr: "inherit",
        }).spawn(),
      );
    }
    const masqPort = freePort();
    children.push(
      new Deno.Command("dnsmasq", {
        args: [
          "-k",
          "--conf-file=/dev/null",
          `--port=${masqPort}`,
          "--listen-address=127.0.0.1",
          "--bind-interfaces",
          "--no-resolv",
          "--no-hosts",
          `--addn-hosts=${hostsFile}`,
          `--server=127.0.0.1#${up.port}`,
          "--cache-size=10000",
          "--local-ttl=30",
          "--pid-file=",
          "--user=root",
          "--log-facility=/dev/null",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "inherit",
      }).spawn(),
    );
    for (const port of [...Object.values(ports), masqPort]) await waitPort(port);
    // Warm caches (and our JIT) before measuring.
    for (const port of [...Object.values(ports), masqPort]) {
      await dnsperf(port, upstreamFile, ["-n", "1"], 20_000);
      await dnsperf(port, clusterFile, ["-l", "1"], 20_000);
    }
    const rows: Row[] = [];
    for (
      const [set, file] of [["cluster", clusterFile], ["cached upstream", upstreamFile]] as const
    ) {
      const m = await measure(masqPort, file, opts.seconds);
      for (const path of paths) {
        const o = await measure(ports[path], file, opts.seconds);
        const r = o.max.qps / m.max.qps;
        const clusterTarget = path === "batched" ? "≥ 1.0×" : "≥ 0.45× (portable)";
        rows.push({
          figure: `${set} names, ${path} path: max QPS (lost)`,
          ours: `${o.max.qps.toFixed(0)} (${o.max.lost})`,
          reference: `${m.max.qps.toFixed(0)} (${m.max.lost})`,
          ratio: `${r.toFixed(2)}×`,
          target: set === "cluster" ? clusterTarget : "",
          met: set === "cluster" ? r >= (path === "batched" ? 1 : 0.45) : undefined,
        });
        rows.push({
          figure: `${set} names, ${path} path: p50 / p99 at 5k qps`,
          ours: `${o.p50.toFixed(3)} / ${o.p99.toFixed(3)} ms`,
          reference: `${m.p50.toFixed(3)} / ${m.p99.toFixed(3)} ms`,
          ratio: `${(o.p99 / m.p99).toFixed(2)}×`,
          target: set === "cluster" ? "p99 < 0.2 ms" : "",
          met: set === "cluster" ? o.p99 < 0.2 : undefined,
        });
      }
    }
    return rows;
  } finally {
    for (const c of children) await stopChild(c);
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const serveAt = arg("--serve");
  if (serveAt) {
    const i = Deno.args.indexOf("--serve");
    await serve(
      Number(serveAt),
      Deno.args[i + 2],
      Number(Deno.args[i + 3]),
      Deno.args[i + 4] as "portable" | "batched",
    );
  } else {
    const seconds = Number(arg("--seconds") ?? 5);
    const services = Number(arg("--services") ?? 500);
    const rows = await runDnsBench({ seconds, services });
    if (rows) {
      console.log(
        `DNS: edgemesh (both UDP paths) vs dnsmasq, dnsperf, ${services} services, ${seconds} s per run`,
      );
      console.log(table(rows));
    }
  }
}
