/** Helpers for the tunnel's loopback tests: agents in temp dirs, echo servers, waiting. */

import { createLogger, nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import type { RelayNode, TunnelOptions, TunnelTestHooks } from "./options.ts";
import { Tunnel } from "./tunnel.ts";

export interface AgentSpec {
  name: string;
  ip: string;
  relayNodes?: RelayNode[];
  bootstrap?: string[];
  psk?: Uint8Array;
  known: Set<string>;
  hooks?: TunnelTestHooks;
  /** LocalTargets: which ip:port this agent may be asked to dial (default: none). */
  allow?: (ip: string, port: number, protocol: "tcp" | "udp") => boolean;
  options?: Partial<TunnelOptions>;
  stateDir?: string;
}

export interface Agent {
  name: string;
  tunnel: Tunnel;
  metrics: Registry;
  stateDir: string;
  /** The agent's first listen address without `/p2p/…` (for relayNodes). */
  addr: string;
  /** The agent's first listen address with `/p2p/…` (for bootstrapPeers). */
  full: string;
  stop(): Promise<void>;
}

export async function startAgent(spec: AgentSpec): Promise<Agent> {
  const stateDir = spec.stateDir ?? await Deno.makeTempDir({ prefix: `tunnel-${spec.name}-` });
  const metrics = new Registry();
  const tunnel = new Tunnel({
    // TUNNEL_TEST_LOG=debug shows the agents' logs when a test needs explaining.
    logger: Deno.env.get("TUNNEL_TEST_LOG")
      ? createLogger({
        level: Deno.env.get("TUNNEL_TEST_LOG") as "debug",
        fields: { agent: spec.name },
        sink: (l) => console.error(l),
      })
      : nullLogger(),
    metrics,
    localTargets: { allowed: spec.allow ?? (() => false) },
    hooks: spec.hooks,
  }, {
    nodeName: spec.name,
    listenAddresses: spec.ip ? [spec.ip] : [],
    listenPort: 0,
    stateDir,
    rendezvous: `test-${Deno.pid}`,
    relayNodes: spec.relayNodes ?? [],
    bootstrapPeers: spec.bootstrap ?? [],
    mdns: false,
    psk: spec.psk,
    enableHolePunch: false,
    heartbeatPeriodMs: 60_000,
    finderPeriodMs: 60_000,
    maxCandidates: 15,
    knownNodes: () => spec.known,
    relayProbePeriodMs: 5000,
    ...spec.options,
  });
  try {
    await tunnel.start(AbortSignal.timeout(10_000));
  } catch (err) {
    if (!spec.stateDir) await Deno.remove(stateDir, { recursive: true });
    throw err;
  }
  const full = tunnel.multiaddrs()[0];
  let stopped: Promise<void> | undefined;
  return {
    name: spec.name,
    tunnel,
    metrics,
    stateDir,
    full,
    addr: full.replace(/\/p2p\/[^/]+$/, ""),
    stop() {
      stopped ??= (async () => {
        await tunnel.stop();
        if (!spec.stateDir) await Deno.remove(stateDir, { recursive: true });
      })();
      return stopped;
    },
  };
}

/** Polls `cond` every 10 ms until it holds, or throws after `ms`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A TCP echo server on 127.0.0.1:0. */
export function tcpEcho(): { port: number; close(): Promise<void> } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const c of l) {
      conns.add(c);
      (async () => {
        try {
          await c.readable.pipeTo(c.writable);
        } catch {
          // Peer reset: the connection is gone either way.
        } finally {
          conns.delete(c);
        }
      })();
    }
  })();
  return {
    port: (l.addr as Deno.NetAddr).port,
    async close() {
      l.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed by pipeTo.
        }
      }
      await loop.catch(() => {});
    },
  };
}

/** A UDP echo server on 127.0.0.1:0. */
export function udpEcho(): { port: number; close(): Promise<void> } {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const loop = (async () => {
    for await (const [d, a] of s) await s.send(d, a);
  })();
  return {
    port: (s.addr as Deno.NetAddr).port,
    async close() {
      s.close();
      await loop.catch(() => {});
    },
  };
}

/** Reads from a ByteStream reader until `n` bytes arrived. */
export async function readN(
  r: ReadableStreamDefaultReader<Uint8Array>,
  n: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let o = 0;
  while (o < n) {
    const { value, done } = await r.read();
    if (done) throw new Error(`stream ended after ${o} of ${n} bytes`);
    out.set(value.subarray(0, Math.min(value.length, n - o)), o);
    o += value.length;
  }
  return out;
}

/**
 * A TCP forwarder in front of `target` on `ip:0`: adds `delayMs` to every chunk in each
 * direction (an honest slow path), and can freeze (stop forwarding, keep sockets open: a hung
 * peer or a silent network).
 */
export function tcpForwarder(ip: string, target: { hostname: string; port: number }, delayMs = 0) {
  const l = Deno.listen({ hostname: ip, port: 0 });
  const socks = new Set<Deno.Conn>();
  let frozen = false;
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null || frozen) break;
        const chunk = buf.slice(0, n);
        if (delayMs) await wait(delayMs);
        if (frozen) break;
        let o = 0;
        while (o < n) o += await to.write(chunk.subarray(o));
      }
    } catch {
      // One side went away; the other is closed below.
    }
    if (!frozen) {
      for (const c of [from, to]) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
        socks.delete(c);
      }
    }
  };
  const loop = (async () => {
    for await (const c of l) {
      socks.add(c);
      try {
        const up = await Deno.connect(target);
        socks.add(up);
        void pump(c, up);
        void pump(up, c);
      } catch {
        c.close();
        socks.delete(c);
      }
    }
  })();
  const addr = l.addr as Deno.NetAddr;
  return {
    addr: `/ip4/${addr.hostname}/tcp/${addr.port}`,
    freeze() {
      frozen = true;
    },
    async close() {
      l.close();
      for (const c of socks) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
      socks.clear();
      await loop.catch(() => {});
    },
  };
}

/** `{hostname, port}` from `/ip4/x/tcp/p`. */
export function hostPort(ma: string): { hostname: string; port: number } {
  const m = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(ma)!;
  return { hostname: m[1], port: Number(m[2]) };
}

/** A relay agent in a child process (see testdata/relay_main.ts). */
export async function spawnRelay(name: string, ip: string, known: Set<string>) {
  const stateDir = await Deno.makeTempDir({ prefix: `tunnel-${name}-` });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-check",
      "--v8-flags=--expose-gc",
      new URL("./testdata/relay_main.ts", import.meta.url).pathname,
      JSON.stringify({ name, ip, known: [...known], stateDir }),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  let pending = "";
  const nextLine = async (): Promise<string> => {
    while (!pending.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`relay ${name} exited`);
      pending += value;
    }
    const i = pending.indexOf("\n");
    const line = pending.slice(0, i);
    pending = pending.slice(i + 1);
    return line;
  };
  const ready = await nextLine();
  if (!ready.startsWith("READY ")) throw new Error(`relay ${name}: ${ready}`);
  const full = ready.slice(6);
  let status: Promise<Deno.CommandStatus> | undefined;
  return {
    name,
    full,
    addr: full.replace(/\/p2p\/[^/]+$/, ""),
    /** RSS and external (ArrayBuffer) bytes after a GC. */
    async memory(): Promise<{ rss: number; external: number }> {
      await writer.write(new TextEncoder().encode("mem\n"));
      const [, rss, external] = (await nextLine()).split(" ");
      return { rss: Number(rss), external: Number(external) };
    },
    kill(): void {
      child.kill("SIGKILL");
    },
    async close(): Promise<void> {
      status ??= (async () => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already dead.
        }
        await writer.close().catch(() => {});
        await lines.cancel().catch(() => {});
        return await child.status;
      })();
      await status;
      await Deno.remove(stateDir, { recursive: true });
    },
  };
}

const enc = new TextEncoder();

/** One "ping" echoed by the echo server on `node` through x's tunnel; returns the stream used. */
export async function echoOnce(x: Agent, port: number, timeoutMs: number, node = "b") {
  const s = await x.tunnel.dialStream({ node, ip: "127.0.0.1", port, protocol: "tcp" }, {
    timeoutMs,
  });
  try {
    const w = s.writable.getWriter();
    const r = s.readable.getReader();
    await w.write(enc.encode("ping"));
    await readN(r, 4);
    await w.close();
    return s;
  } finally {
    s.close();
  }
}

/** True when `x` has a verified connection to `node`. */
export function sees(x: Agent, node: string): boolean {
  return x.tunnel.snapshot().peers.some((p) => p.node === node);
}

/** Agents sharing the cluster's node names and PSK, all stopped by `stopAll`. */
export function agentGroup(known: Set<string>, psk: Uint8Array) {
  const agents: Agent[] = [];
  return {
    async start(spec: Omit<AgentSpec, "known" | "psk">): Promise<Agent> {
      const x = await startAgent({ known, psk, ...spec });
      agents.push(x);
      return x;
    },
    async stopAll(): Promise<void> {
      await Promise.all(agents.map((x) => x.stop()));
    },
  };
}
