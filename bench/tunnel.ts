/**
 * Tunnel benchmark, all on loopback in one run: one tunnel stream agent→agent, direct and
 * through a relay, against raw TCP over the same addresses and raw TCP through a plain
 * forwarder on the relay's address (one extra hop); time to first byte of a request/response
 * through the tunnel's proxy protocol against a direct TCP connect to the same echo server;
 * the RSS of a relay in its own process before and after forwarding 1 GB; and the time from
 * SIGKILL of the primary relay to the next successful stream through the standby.
 *
 * Throughput and latency run the real `Tunnel` agents in this process and the relay in a
 * child process (mod/tunnel/testdata/relay_main.ts), as on separate hosts; the agents share
 * this process's one JS thread, so a relayed byte costs it two encryptions and two
 * decryptions (end-to-end Noise inside the circuit plus the hop's Noise) where a direct one
 * costs one of each. Memory and failover use relay child processes too. Rounds alternate
 * between the contenders so that load from elsewhere on the machine hits them alike.
 * Prints a markdown table; `--json` prints the rows as JSON.
 *   deno run -A --unstable-net bench/tunnel.ts [--rounds 3] [--seconds 2] [--conns 300]
 *     [--gb 1] [--streams 100000] [--only throughput,latency,streams,memory,failover]
 */

import type { ByteStream } from "../mod/contracts/mod.ts";
import { type Agent, spawnRelay, startAgent, tcpEcho, waitFor } from "../mod/tunnel/test_util.ts";
import { fmtStat, ratio, type Row, type Stat, stat, table } from "./lib.ts";

const args = Deno.args;
const num = (flag: string, dflt: number) =>
  args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) || dflt : dflt;
const ROUNDS = Math.max(3, num("--rounds", 3));
const SECONDS = num("--seconds", 2);
const CONNS = num("--conns", 300);
const MEMORY_BYTES = num("--gb", 1) * 1e9;
const STREAMS = num("--streams", 100_000);
/** `--only throughput,latency,memory,failover` (for profiling one part). */
const ONLY = args.includes("--only") ? args[args.indexOf("--only") + 1].split(",") : undefined;
const want = (part: string) => !ONLY || ONLY.includes(part);
/** Forwarding for the memory figure stops here even if the bytes are not all through. */
const MEMORY_LIMIT_MS = 25_000;
const CHUNK = 256 << 10;
/** Bytes a writer may have sent that the sink has not yet read (see `pace`). */
const IN_FLIGHT = (args.includes("--in-flight-mb") ? num("--in-flight-mb", 0) : 32) * (1 << 20) ||
  Infinity;
const REQUEST = new Uint8Array(64).fill(0x61);
const T0 = performance.now();
/** Progress on stderr (bench/run.ts keeps stdout for the table). */
const progress = (what: string) =>
  console.error(`[tunnel bench ${((performance.now() - T0) / 1000).toFixed(1)} s] ${what}`);
/** Names are pinned to keys on first use: each failover round has its own. */
const NODES = new Set([
  ...["r1", "a", "b", "c", "d", "e", "rm", "r2"],
  ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].flatMap((i) => [`rk${i}`, `f${i}`, `g${i}`]),
]);

/** Stopped in reverse order on the way out, also on SIGTERM from bench/run.ts. */
const cleanups: (() => Promise<void>)[] = [];
const cleanup = async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
};
const onTerm = async () => {
  await cleanup();
  Deno.exit(143);
};
Deno.addSignalListener("SIGTERM", onTerm);
// A rejection nobody awaited (libp2p rejects drain promises on close) must not skip cleanup.
globalThis.addEventListener("unhandledrejection", async (e) => {
  e.preventDefault();
  console.error("unhandled rejection:", e.reason);
  await cleanup();
  Deno.exit(1);
});

/** Peers at these IPs cannot be dialled (as across two NATs). */
const natBetween = (...ips: string[]) => ({
  denyDialAddress: (ma: string) => ips.some((ip) => ma.startsWith(`/ip4/${ip}/`)),
});

try {
  const rows = await main();
  if (args.includes("--json")) console.log(JSON.stringify(rows));
  else {
    console.log(table(rows));
    console.log(`
All on 127.0.0.0/8, no PSK, Noise + yamux over TCP. Throughput: one stream (or TCP
connection) writing ${CHUNK >> 10} KiB chunks for ${SECONDS} s into a sink that reads until
EOF; the figure counts until the sink closed (every byte arrived). "Direct" and "relayed"
tunnels are \`Tunnel\` instances in the benchmark's process (relayed: the dialling agent has
\`relayOnly\`, the relay is relay_main.ts in its own process); the forwarder is a read/write loop with
${CHUNK >> 10} KiB buffers in the benchmark's process on the relay's IP. Latency: ${CONNS}
sequential connections per round, each dial (or \`dialStream\`), 64 bytes written, time until
the first echoed byte. Memory: relay_main.ts in its own process, RSS after a forced GC (the
least of 4 readings), before, after a first stream carried half the bytes, and after a second. Failover: the primary
relay is a child process killed with SIGKILL, the standby an in-process relay; the time until a
new stream echoes through the standby. ${ROUNDS} rounds of each figure, median (min–max).
Writers also pace themselves to at most ${IN_FLIGHT / (1 << 20)} MiB unread at the sink
(\`--in-flight-mb 0\` turns that off): the pacing predates the tunnel's own drain wait in
stream_io.ts (@libp2p/utils 7.4.1 \`onDrain()\` resolved at once after a first drain).`);
  }
} finally {
  await cleanup();
  Deno.removeSignalListener("SIGTERM", onTerm);
}
// libp2p leaves timers behind after stop(): without this the process would idle until
// bench/run.ts's time limit.
Deno.exit(0);

async function main(): Promise<Row[]> {
  const rows: Row[] = [];
  const sink = tcpSink("127.0.20.3");
  cleanups.push(sink.close);
  const echo = tcpEcho();
  cleanups.push(echo.close);
  const allow = (ip: string, port: number) =>
    (ip === "127.0.20.3" && port === sink.port) || (ip === "127.0.0.1" && port === echo.port);

  // r1 relays; b serves the sink and the echo; a reaches b directly; c only through r1.
  // The relay runs in its own process, as it does on its own host.
  const r1 = await spawnRelay("r1", "127.0.20.1", NODES);
  cleanups.push(r1.close);
  const relayNodes = [{ nodeName: "r1", advertiseAddress: [r1.addr] }];
  const b = await agent({ name: "b", ip: "127.0.20.3", known: NODES, relayNodes, allow });
  const bAddr = b.tunnel.multiaddrs()[0];
  const a = await agent({ name: "a", ip: "127.0.20.2", known: NODES, bootstrap: [bAddr] });
  const c = await agent({
    name: "c",
    ip: "127.0.20.4",
    known: NODES,
    relayNodes,
    bootstrap: [bAddr],
    options: { relayOnly: true },
  });
  await waitFor(
    () =>
      !!a.tunnel.peerIdOf("b") && !!c.tunnel.peerIdOf("b") &&
      [b, c].every((x) => x.tunnel.snapshot().relays.some((r) => r.reserved)),
    10_000,
    "a and c to know b, b and c to hold reservations on r1",
  );
  const fwd = forwarder("127.0.20.1", { hostname: "127.0.20.3", port: sink.port });
  cleanups.push(fwd.close);

  if (want("throughput")) {
    progress("agents ready; throughput");
    const sinkTarget = { node: "b", ip: "127.0.20.3", port: sink.port, protocol: "tcp" as const };
    const [rawT, directT, relayedT, fwdT] = await interleaved([
      () => pushTcp({ hostname: "127.0.20.3", port: sink.port }, sink),
      () => pushTunnel(sink, a, sinkTarget, "tunnel-direct"),
      () => pushTunnel(sink, c, sinkTarget, "tunnel-relay"),
      () => pushTcp({ hostname: "127.0.20.1", port: fwd.port }, sink),
    ]);
    const [raw, direct, relayed, fwdS] = [rawT, directT, relayedT, fwdT].map(stat);
    const gbit = (s: Stat) => stat(s.samples.map((x) => (x * 8) / 1000));
    rows.push({
      figure: "tunnel stream, direct (one stream a→b)",
      ours: `${fmtStat(direct, "MB/s", 0)} = ${fmtStat(gbit(direct), "Gbit/s", 2)}`,
      reference: `raw TCP, same addresses: ${fmtStat(raw, "MB/s", 0)} = ${
        fmtStat(gbit(raw), "Gbit/s", 1)
      }`,
      ratio: `${ratio(direct, raw, 3)} raw TCP`,
      target: "≥ 2 Gbit/s",
      met: direct.median * 8 / 1000 >= 2,
    });
    rows.push({
      figure: "relayed stream (relayOnly c→r1→b, relay in its own process)",
      ours: `${fmtStat(relayed, "MB/s", 0)} = ${fmtStat(gbit(relayed), "Gbit/s", 2)}`,
      reference: `direct tunnel (above); raw TCP through a plain forwarder on the relay's IP: ${
        fmtStat(fwdS, "MB/s", 0)
      }`,
      ratio: `${ratio(relayed, direct)} direct tunnel; ${ratio(relayed, fwdS, 3)} forwarder (${
        ratio(fwdS, raw)
      } of raw TCP)`,
      target: "≥ 0.5× direct tunnel",
      met: relayed.median >= 0.5 * direct.median,
    });
  }
  if (want("latency")) {
    progress("connect latency");
    const echoTarget = { node: "b", ip: "127.0.0.1", port: echo.port, protocol: "tcp" as const };
    const [tcpL, directL, relayedL] = await interleaved([
      () => latencies(() => ttfbTcp(echo.port)),
      () => latencies(() => ttfbTunnel(a, echoTarget, "tunnel-direct")),
      () => latencies(() => ttfbTunnel(c, echoTarget, "tunnel-relay")),
    ]);
    const p = (l: { p50: number; p99: number }[], k: "p50" | "p99") => stat(l.map((x) => x[k]));
    const lat = (l: { p50: number; p99: number }[]) =>
      `p50 ${fmtStat(p(l, "p50"), "ms", 2)}, p99 ${fmtStat(p(l, "p99"), "ms", 2)}`;
    for (const [name, l] of [["direct", directL], ["relayed", relayedL]] as const) {
      rows.push({
        figure: `connect latency, tunnel ${name} (dial + proxy header + first echoed byte)`,
        ours: lat(l),
        reference: `direct TCP connect to the same echo server: ${lat(tcpL)}`,
        ratio: `${ratio(p(l, "p50"), p(tcpL, "p50"), 1)} p50, ${
          ratio(p(l, "p99"), p(tcpL, "p99"), 1)
        } p99`,
        target: "p50 and p99",
      });
    }
  }
  if (want("streams")) {
    progress(`${STREAMS} short streams`);
    const echoTarget = { node: "b", ip: "127.0.0.1", port: echo.port, protocol: "tcp" as const };
    rows.push(await shortStreams([a, b], echoTarget));
  }
  await Promise.all([a, c].map((x) => x.stop()));

  if (want("memory")) {
    progress("memory");
    rows.push(await memory(allow, sink));
  }
  if (want("failover")) {
    progress("failover");
    rows.push(await failover(echo.port));
  }
  progress("done");
  return rows;
}

/** startAgent, stopped on the way out. */
async function agent(spec: Parameters<typeof startAgent>[0]): Promise<Agent> {
  const x = await startAgent(spec);
  cleanups.push(x.stop);
  return x;
}

/** `ROUNDS` rounds; in each, every contender runs once, in turn. */
async function interleaved<T>(fns: (() => Promise<T>)[]): Promise<T[][]> {
  const out: T[][] = fns.map(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    for (let k = 0; k < fns.length; k++) {
      const t = performance.now();
      out[k].push(await fns[k]());
      progress(
        `  round ${i} contender ${k}: ${JSON.stringify(out[k][i])} in ${
          (performance.now() - t).toFixed(0)
        } ms`,
      );
    }
  }
  return out;
}

interface Sink {
  port: number;
  /** Bytes read so far, over all connections. */
  received(): number;
  /** Resolves on the next read (or after 100 ms). */
  progress(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP server that reads every connection until EOF, then closes it; counts the bytes. */
function tcpSink(hostname: string): Sink {
  const l = Deno.listen({ hostname, port: 0 });
  const conns = new Set<Deno.Conn>();
  let received = 0;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    for await (const conn of l) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(CHUNK);
        try {
          for (let n; (n = await conn.read(buf)) !== null;) {
            received += n;
            wake?.();
            wake = undefined;
          }
        } finally {
          conns.delete(conn);
          conn.close();
        }
      })().catch(() => {});
    }
  })();
  return {
    port: (l.addr as Deno.NetAddr).port,
    received: () => received,
    progress() {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
    async close() {
      l.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed by its reader meanwhile.
        }
      }
      await loop.catch(() => {});
    },
  };
}

/**
 * Waits while more than IN_FLIGHT bytes are written but not yet at the sink. The tunnel's
 * writable does not push back (see the notes): without this, a writer queues gigabytes.
 */
async function pace(sink: Sink, base: number, sent: number): Promise<void> {
  for (let i = 0; i < 200 && sent - (sink.received() - base) > IN_FLIGHT; i++) {
    await sink.progress();
  }
}

/** A plain TCP forwarder on `hostname:0`: a read/write loop with one buffer per direction. */
function forwarder(hostname: string, target: Deno.ConnectOptions) {
  const l = Deno.listen({ hostname, port: 0 });
  const socks = new Set<Deno.Conn>();
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(CHUNK);
    try {
      for (let n; (n = await from.read(buf)) !== null;) {
        for (let o = 0; o < n;) o += await to.write(buf.subarray(o, n));
      }
      await to.closeWrite();
    } catch {
      // One side went away; both are closed below.
    }
  };
  const loop = (async () => {
    for await (const down of l) {
      socks.add(down);
      const up = await Deno.connect(target).catch(() => undefined);
      if (!up) {
        down.close();
        socks.delete(down);
        continue;
      }
      socks.add(up);
      void Promise.all([pump(down, up), pump(up, down)]).finally(() => {
        for (const s of [down, up]) {
          socks.delete(s);
          try {
            s.close();
          } catch {
            // Already closed.
          }
        }
      });
    }
  })();
  return {
    port: (l.addr as Deno.NetAddr).port,
    async close() {
      l.close();
      for (const s of socks) {
        try {
          s.close();
        } catch {
          // Already closed.
        }
      }
      await loop.catch(() => {});
    },
  };
}

/** Raw TCP: writes for SECONDS, half-closes, waits for the sink to close; MB/s. */
async function pushTcp(to: Deno.ConnectOptions, sink: Sink): Promise<number> {
  const conn = await Deno.connect(to);
  try {
    const buf = new Uint8Array(CHUNK);
    const base = sink.received();
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    let sent = 0;
    while (performance.now() < end) {
      for (let o = 0; o < CHUNK;) o += await conn.write(buf.subarray(o));
      sent += CHUNK;
      await pace(sink, base, sent);
    }
    await conn.closeWrite();
    await conn.read(new Uint8Array(1));
    return sent / ((performance.now() - t0) / 1000) / 1e6;
  } finally {
    conn.close();
  }
}

/** One tunnel stream: as `pushTcp`. A fresh chunk per write: libp2p may queue it. */
async function pushTunnel(
  sink: Sink,
  from: Agent,
  target: Parameters<Agent["tunnel"]["dialStream"]>[0],
  path: ByteStream["path"],
  bytes?: number,
  limitMs = SECONDS * 1000,
): Promise<number> {
  const s = await from.tunnel.dialStream(target, { timeoutMs: 10_000 });
  try {
    if (s.path !== path) throw new Error(`stream went ${s.path}, expected ${path}`);
    const w = s.writable.getWriter();
    const base = sink.received();
    const t0 = performance.now();
    const end = t0 + limitMs;
    let sent = 0;
    while (performance.now() < end && (bytes === undefined || sent < bytes)) {
      await w.write(new Uint8Array(CHUNK));
      sent += CHUNK;
      await pace(sink, base, sent);
    }
    await w.close();
    const r = s.readable.getReader();
    if (!(await r.read()).done) throw new Error("the sink answered");
    r.releaseLock();
    return sent / ((performance.now() - t0) / 1000) / 1e6;
  } finally {
    s.close();
  }
}

/** `CONNS` sequential samples of `once` (ms): p50 and p99. */
async function latencies(once: () => Promise<number>): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < CONNS; i++) ms.push(await once());
  ms.sort((x, y) => x - y);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
  return { p50: at(0.5), p99: at(0.99) };
}

async function ttfbTcp(port: number): Promise<number> {
  const t0 = performance.now();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(REQUEST);
    if ((await conn.read(new Uint8Array(64))) === null) throw new Error("echo closed");
    return performance.now() - t0;
  } finally {
    conn.close();
  }
}

async function ttfbTunnel(
  from: Agent,
  target: Parameters<Agent["tunnel"]["dialStream"]>[0],
  path: ByteStream["path"],
): Promise<number> {
  const t0 = performance.now();
  const s = await from.tunnel.dialStream(target, { timeoutMs: 5000 });
  try {
    if (s.path !== path) throw new Error(`stream went ${s.path}, expected ${path}`);
    const w = s.writable.getWriter();
    await w.write(REQUEST);
    w.releaseLock();
    const r = s.readable.getReader();
    const { done } = await r.read();
    r.releaseLock();
    if (done) throw new Error("echo closed");
    return performance.now() - t0;
  } finally {
    s.close();
  }
}

/**
 * STREAMS short request/response streams a → b (64 at a time): afterwards no proxy stream may
 * be open on either side, and the process's memory must not have grown with the count
 * (EdgeMesh's most reported bug is a stream leak).
 */
async function shortStreams(
  [a, b]: Agent[],
  target: Parameters<Agent["tunnel"]["dialStream"]>[0],
): Promise<Row> {
  const once = () => ttfbTunnel(a, target, "tunnel-direct");
  for (let i = 0; i < 2000; i++) await once(); // warm-up: JIT, pools, V8's heap sizing
  // With --v8-flags=--expose-gc (bench/run.ts passes it) readings follow a full GC.
  const gc = (globalThis as { gc?: () => void }).gc;
  const mem = () => (gc?.(), Deno.memoryUsage());
  const before = mem();
  const t0 = performance.now();
  let next = 0;
  const half: Deno.MemoryUsage[] = [];
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < STREAMS) {
      if (++next === STREAMS / 2) half.push(mem());
      await once();
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const deadline = performance.now() + 5000;
  while (
    (a.tunnel.openProxyStreams() > 0 || b.tunnel.openProxyStreams() > 0) &&
    performance.now() < deadline
  ) await new Promise((r) => setTimeout(r, 10));
  const open = a.tunnel.openProxyStreams() + b.tunnel.openProxyStreams();
  const after = mem();
  const mib = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;
  return {
    figure: `${STREAMS.toLocaleString("en")} short streams a→b (64 at a time, ${
      (STREAMS / secs).toFixed(0)
    }/s): proxy streams open afterwards; memory of the process holding a and b`,
    ours: `${open} open; RSS ${mib(before.rss)} → ${mib(half[0]?.rss ?? 0)} (half) → ${
      mib(after.rss)
    }; JS heap ${mib(before.heapUsed)} → ${mib(after.heapUsed)}`,
    reference: "",
    ratio: "",
    target: "0 open; no growth over the second half beyond 32 MiB",
    met: open === 0 && after.rss - (half[0]?.rss ?? 0) < 32 << 20,
  };
}

/** RSS of a relay process before and after one stream carried MEMORY_BYTES through it. */
async function memory(
  allow: (ip: string, port: number) => boolean,
  sink: Sink,
): Promise<Row> {
  const relay = await spawnRelay("rm", "127.0.21.1", NODES);
  cleanups.push(relay.close);
  const relayNodes = [{ nodeName: "rm", advertiseAddress: [relay.addr] }];
  // d cannot dial b's side (e) directly: everything goes through rm.
  const e = await agent({
    name: "e",
    ip: "127.0.21.3",
    known: NODES,
    relayNodes,
    hooks: natBetween("127.0.21.2"),
    allow,
  });
  const d = await agent({
    name: "d",
    ip: "127.0.21.2",
    known: NODES,
    relayNodes,
    hooks: natBetween("127.0.21.3"),
  });
  await waitFor(
    () => [d, e].every((x) => x.tunnel.snapshot().relays[0]?.reserved),
    10_000,
    "reservations on rm",
  );
  const sinkTarget = { node: "e", ip: "127.0.20.3", port: sink.port, protocol: "tcp" as const };
  // Two streams of half the bytes each, with a reading between: growth that stops after
  // the first half is the allocator's high-water mark; growth per byte would be a leak.
  const before = await settled(relay);
  const t0 = performance.now();
  let carried = 0;
  const readings: { rss: number; external: number }[] = [];
  for (let half = 0; half < 2; half++) {
    const left = MEMORY_LIMIT_MS - (performance.now() - t0);
    const t = performance.now();
    const mbps = await pushTunnel(sink, d, sinkTarget, "tunnel-relay", MEMORY_BYTES / 2, left / 2);
    carried += mbps * 1e6 * (performance.now() - t) / 1000;
    readings.push(await settled(relay));
  }
  const mbps = carried / 1e6 / ((performance.now() - t0) / 1000);
  const [mid, after] = readings;
  await Promise.all([d.stop(), e.stop()]);
  await relay.close();
  const mib = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;
  const growth = after.rss - before.rss;
  return {
    figure: `memory: relay process RSS before / after forwarding ${
      (carried / 1e9).toFixed(2)
    } GB (one stream, ${mbps.toFixed(0)} MB/s, relay in its own process)`,
    ours: `${mib(before.rss)} / ${mib(after.rss)} (growth ${mib(growth)}; ${
      mib(mid.rss)
    } after the first half); external ${mib(before.external)} / ${mib(after.external)}`,
    reference: "",
    ratio: "",
    target: "flat: < 32 MiB growth over the second half; ≤ 200 MB (the loaded agent's limit)",
    met: after.rss - mid.rss < 32 << 20 && after.rss <= 200e6,
  };
}

/** The relay's memory after GC: the least RSS of 4 readings 200 ms apart (V8 frees lazily). */
async function settled(
  relay: Awaited<ReturnType<typeof spawnRelay>>,
): Promise<{ rss: number; external: number }> {
  let best = await relay.memory();
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const m = await relay.memory();
    if (m.rss < best.rss) best = m;
  }
  return best;
}

/** SIGKILL of the primary relay (a child process) → the next stream echoing via the standby. */
async function failover(echoPort: number): Promise<Row> {
  const r2 = await agent({
    name: "r2",
    ip: "127.0.22.2",
    known: NODES,
    relayNodes: [{ nodeName: "r2", advertiseAddress: [] }],
  });
  const samples: number[] = [];
  for (let round = 0; round < Math.min(ROUNDS, 10); round++) {
    const [rkName, fName, gName] = [`rk${round}`, `f${round}`, `g${round}`];
    const rk = await spawnRelay(rkName, "127.0.22.1", NODES);
    cleanups.push(rk.close);
    const relayNodes = [
      { nodeName: rkName, advertiseAddress: [rk.addr] },
      { nodeName: "r2", advertiseAddress: [r2.addr] },
    ];
    // The child relay is made the nearest, so that the primary is the one killed.
    const measureRtt = async (node: string, measured: () => Promise<number>) =>
      node === rkName ? 1 : 30 + await measured();
    const g = await agent({
      name: gName,
      ip: "127.0.22.4",
      known: NODES,
      relayNodes,
      hooks: { ...natBetween("127.0.22.3"), measureRtt },
      allow: (_ip, port) => port === echoPort,
    });
    const f = await agent({
      name: fName,
      ip: "127.0.22.3",
      known: NODES,
      relayNodes,
      hooks: { ...natBetween("127.0.22.4"), measureRtt },
    });
    const both = (x: Agent) => x.tunnel.snapshot().relays.filter((r) => r.reserved).length === 2;
    await waitFor(() => both(f) && both(g), 10_000, "reservations on both relays");
    const target = { node: gName, ip: "127.0.0.1", port: echoPort, protocol: "tcp" as const };
    const first = await echoVia(f, target, 10_000);
    if (first !== rkName) throw new Error(`the first stream went via ${first}, not the primary`);
    const t0 = performance.now();
    rk.kill();
    let via: string | undefined;
    while (!via) {
      via = await echoVia(f, target, 1000).catch((err) => {
        if (performance.now() - t0 > 10_000) throw err;
        return undefined;
      });
    }
    samples.push(performance.now() - t0);
    progress(`  round ${round}: ${samples[round].toFixed(0)} ms`);
    if (via !== "r2") throw new Error(`the stream after the kill went via ${via}`);
    await Promise.all([f.stop(), g.stop()]);
    await rk.close();
  }
  const s = stat(samples);
  return {
    figure: "failover: primary relay SIGKILLed → next stream echoed through the standby",
    ours: fmtStat(s, "ms", 0),
    reference: "",
    ratio: "",
    target: "< 1 s (killed)",
    met: s.median < 1000,
  };
}

/** One echo round trip on a new stream; the relay it went through. */
async function echoVia(
  from: Agent,
  target: Parameters<Agent["tunnel"]["dialStream"]>[0],
  timeoutMs: number,
): Promise<string | undefined> {
  const s = await from.tunnel.dialStream(target, { timeoutMs });
  try {
    const w = s.writable.getWriter();
    await w.write(REQUEST);
    w.releaseLock();
    const r = s.readable.getReader();
    const timer = setTimeout(() => s.close(), timeoutMs);
    try {
      const { done } = await r.read();
      if (done) throw new Error("echo closed");
    } finally {
      clearTimeout(timer);
      r.releaseLock();
    }
    return s.relay;
  } finally {
    s.close();
  }
}
