/**
 * Dial-back (`/edgemesh/dialback/1.0.0`): a node asks a connected peer (the helper) to open a
 * NEW connection to its listening port, to learn whether it can be reached from where the
 * helper is. The helper dials only the asker's own IP as it observes it on their connection,
 * or addresses configured for the asker (`relayNodes[].advertiseAddress`), never anything else
 * (it cannot be used to scan other hosts); requests are rate limited per peer and bounded in
 * number at once. On the new connection the helper proves it reached the asker by echoing the
 * asker's nonce (the libp2p dial itself checks the asker's peer ID); the asker counts a
 * success only when that proof arrived on a connection other than the one it asked on.
 */

import type { Connection, Stream } from "@libp2p/interface";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import type { Libp2p } from "libp2p";
import type { Logger } from "../log/mod.ts";
import { isCircuit } from "./addrs.ts";
import {
  DIALBACK_PROTOCOL,
  type DialbackAddr,
  type DialbackMessage,
  type DialbackStatus,
  encodeDialback,
  isIpv4,
  NONCE_BYTES,
  readDialback,
} from "./dialback_wire.ts";
import { WireError } from "./errors.ts";
import { closeStream, deadline, StreamReader } from "./stream_io.ts";

export interface DialbackDeps {
  node: Libp2p<Record<string, unknown>>;
  /** The node name of a verified cluster peer, waiting briefly for its claim. */
  memberNode(peerId: string): Promise<string | undefined>;
  /** Addresses configured for a node (`relayNodes[].advertiseAddress`), dialable as well. */
  advertised(node: string): DialbackAddr[];
  /** True when `ip` is in one of this host's own networks (same LAN). */
  isLocalNet(ip: string): boolean;
  logger: Logger;
  shutdown: AbortSignal;
  now?: () => number;
}

export interface DialbackOptions {
  /** Time the helper gives its dial and proof (5000). */
  dialTimeoutMs: number;
  /** Requests one peer may make per minute; more are refused (6). */
  perPeerPerMinute: number;
  /** Dial-backs performed at once for all peers; more are refused (4). */
  maxConcurrent: number;
  /** Addresses dialled per request (4). */
  maxTargets: number;
}

export const DIALBACK_DEFAULTS: DialbackOptions = {
  dialTimeoutMs: 5000,
  perPeerPerMinute: 6,
  maxConcurrent: 4,
  maxTargets: 4,
};

/** What a dial-back request taught the asker. */
export interface DialbackResult {
  helper: string;
  /** `failed`: the helper tried and could not connect; `unproven`: it said ok, no proof came. */
  outcome: DialbackStatus | "unproven" | "error";
  /** The helper is outside our LAN (by its address or by its own view of ours). */
  outside: boolean;
  /** The address the helper dialled. */
  addr?: DialbackAddr;
  error?: string;
}

/** `ip` and `port` of `/ip4/…/tcp/…` (undefined for anything else, circuits included). */
export function tcpAddrOf(ma: Multiaddr): DialbackAddr | undefined {
  if (isCircuit(ma)) return undefined;
  const m = /^\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(ma.toString());
  if (!m || !isIpv4(m[1])) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { ip: m[1], port } : undefined;
}

/**
 * What a helper may dial for an asker: its addresses whose IP is the observed one or a
 * configured one; any other address is tried at the observed IP with the same port (the
 * NAT's public side). Nothing when there is neither an observed nor a configured IP.
 */
export function dialTargets(
  observedIp: string | undefined,
  askerAddrs: DialbackAddr[],
  advertised: DialbackAddr[],
  max: number,
): DialbackAddr[] {
  const allowed = new Set(advertised.map((a) => a.ip));
  const out: DialbackAddr[] = [];
  const add = (a: DialbackAddr) => {
    if (out.length < max && !out.some((o) => o.ip === a.ip && o.port === a.port)) out.push(a);
  };
  for (const a of askerAddrs) {
    if (a.ip === observedIp || allowed.has(a.ip)) add(a);
    else if (observedIp) add({ ip: observedIp, port: a.port });
  }
  return out;
}

const RETRY_PAUSE_MS = 1100;

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** At most `perMinute` requests per peer in any minute (the map is pruned as it grows). */
export class PerPeerLimit {
  #recent = new Map<string, number[]>();

  constructor(readonly perMinute: number, readonly now: () => number = Date.now) {}

  allow(peer: string): boolean {
    const t = this.now();
    if (this.#recent.size > 1024) {
      for (const [p, ts] of this.#recent) {
        if (ts.every((x) => x <= t - 60_000)) this.#recent.delete(p);
      }
    }
    const ts = (this.#recent.get(peer) ?? []).filter((x) => x > t - 60_000);
    const ok = ts.length < this.perMinute;
    if (ok) ts.push(t);
    this.#recent.set(peer, ts);
    return ok;
  }
}

interface Pending {
  peer: string;
  connId: string;
  proven: boolean;
}

export class Dialback {
  readonly opts: DialbackOptions;
  #pending = new Map<string, Pending>();
  #limit: PerPeerLimit;
  #active = 0;

  constructor(readonly deps: DialbackDeps, opts: Partial<DialbackOptions> = {}) {
    this.opts = { ...DIALBACK_DEFAULTS, ...opts };
    this.#limit = new PerPeerLimit(this.opts.perPeerPerMinute, () => this.#now());
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Handles an inbound dial-back stream (a request from a peer, or a proof for us). */
  async handle(stream: Stream, conn: Connection): Promise<void> {
    const reader = new StreamReader(stream);
    const d = deadline(this.opts.dialTimeoutMs + 2000, this.deps.shutdown);
    try {
      const m = await readDialback((n) => reader.readExactly(n, d.signal));
      if (m.type === "request") await this.#help(stream, conn, m, d.signal);
      else if (m.type === "prove") this.#proof(stream, conn, m.nonce);
      else throw new WireError(`unexpected dial-back message ${m.type}`);
    } catch (err) {
      this.deps.logger.debug("dial-back stream failed", {
        peerId: conn.remotePeer.toString(),
        error: err,
      });
      stream.abort(err instanceof Error ? err : new WireError(String(err)));
    } finally {
      d.clear();
      reader.detach();
      await closeStream(stream, 500);
    }
  }

  #proof(stream: Stream, conn: Connection, nonce: Uint8Array): void {
    const p = this.#pending.get(hex(nonce));
    if (
      !p || p.peer !== conn.remotePeer.toString() || p.connId === conn.id ||
      isCircuit(conn.remoteAddr)
    ) {
      throw new WireError("dial-back proof for no request of this peer");
    }
    p.proven = true;
    stream.send(encodeDialback({ type: "proved" }));
  }

  async #help(
    stream: Stream,
    conn: Connection,
    req: DialbackMessage & { type: "request" },
    signal: AbortSignal,
  ): Promise<void> {
    const asker = conn.remotePeer.toString();
    const reply = (status: DialbackStatus, outside = false, addr?: DialbackAddr) =>
      stream.send(encodeDialback({ type: "result", status, outside, addr }));
    const name = await this.deps.memberNode(asker);
    if (name === undefined || this.#active >= this.opts.maxConcurrent) return void reply("refused");
    if (!this.#limit.allow(asker)) return void reply("refused");
    const observed = tcpAddrOf(conn.remoteAddr);
    const targets = dialTargets(
      observed?.ip,
      req.addrs,
      this.deps.advertised(name),
      this.opts.maxTargets,
    );
    if (!targets.length) return void reply("no-address");
    this.#active++;
    try {
      // A second try after a pause: libp2p refuses more than a few inbound connections a
      // second from one IP (peers behind one NAT or forwarder), and a refusal is no verdict.
      const started = performance.now();
      let hit = await this.#dialAndProve(asker, targets, req.nonce, signal);
      const left = this.opts.dialTimeoutMs - (performance.now() - started) - RETRY_PAUSE_MS;
      if (!hit && left >= 1000 && !signal.aborted) {
        await pause(RETRY_PAUSE_MS, signal);
        hit = await this.#dialAndProve(asker, targets, req.nonce, signal, left);
      }
      const ip = hit?.ip ?? observed?.ip;
      const outside = ip !== undefined && !this.deps.isLocalNet(ip);
      reply(hit ? "ok" : "failed", outside, hit ?? targets[0]);
    } finally {
      this.#active--;
    }
  }

  /** Opens a new connection to the asker, proves it on it, closes it; the address reached. */
  async #dialAndProve(
    asker: string,
    targets: DialbackAddr[],
    nonce: Uint8Array,
    signal: AbortSignal,
    timeoutMs = this.opts.dialTimeoutMs,
  ): Promise<DialbackAddr | undefined> {
    const { node } = this.deps;
    const before = new Set(node.getConnections().map((c) => c.id));
    const d = deadline(timeoutMs, signal);
    let conn: Connection | undefined;
    let stream: Stream | undefined;
    let reader: StreamReader | undefined;
    try {
      conn = await node.dial(
        targets.map((t) => multiaddr(`/ip4/${t.ip}/tcp/${t.port}/p2p/${asker}`)),
        { signal: d.signal, force: true },
      );
      if (
        before.has(conn.id) || conn.remotePeer.toString() !== asker || isCircuit(conn.remoteAddr)
      ) {
        return undefined;
      }
      stream = await conn.newStream(DIALBACK_PROTOCOL, { signal: d.signal });
      reader = new StreamReader(stream);
      stream.send(encodeDialback({ type: "prove", nonce }));
      const r = reader;
      const m = await readDialback((n) => r.readExactly(n, d.signal));
      if (m.type !== "proved") return undefined;
      return tcpAddrOf(conn.remoteAddr) ?? targets[0];
    } catch (err) {
      this.deps.logger.debug("dial-back failed", { peerId: asker, targets, error: err });
      return undefined;
    } finally {
      d.clear();
      reader?.detach();
      if (stream) await closeStream(stream, 500);
      if (conn && !before.has(conn.id)) {
        await conn.close().catch((err) => conn?.abort(err));
      }
    }
  }

  /** Asks the peer on `conn` to dial us back at `addrs` (our listen addresses). Never throws. */
  async ask(
    conn: Connection,
    addrs: DialbackAddr[],
    signal: AbortSignal,
  ): Promise<DialbackResult> {
    const helper = conn.remotePeer.toString();
    const helperAddr = tcpAddrOf(conn.remoteAddr);
    const near = helperAddr !== undefined && this.deps.isLocalNet(helperAddr.ip);
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const key = hex(nonce);
    const pending: Pending = { peer: helper, connId: conn.id, proven: false };
    this.#pending.set(key, pending);
    const d = deadline(this.opts.dialTimeoutMs + 3000, signal);
    let stream: Stream | undefined;
    let reader: StreamReader | undefined;
    try {
      stream = await conn.newStream(DIALBACK_PROTOCOL, { signal: d.signal });
      reader = new StreamReader(stream);
      stream.send(encodeDialback({ type: "request", nonce, addrs }));
      const r = reader;
      const m = await readDialback((n) => r.readExactly(n, d.signal));
      if (m.type !== "result") throw new WireError(`unexpected dial-back message ${m.type}`);
      const outcome = m.status === "ok" && !pending.proven ? "unproven" : m.status;
      return { helper, outcome, outside: m.outside || !near, ...(m.addr ? { addr: m.addr } : {}) };
    } catch (err) {
      return {
        helper,
        outcome: "error",
        outside: !near,
        error: err instanceof Error ? err.message : String(err),
      };
    } finally {
      d.clear();
      this.#pending.delete(key);
      reader?.detach();
      if (stream) await closeStream(stream, 500);
    }
  }
}
