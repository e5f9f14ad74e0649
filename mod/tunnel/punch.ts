/**
 * Our own coordinated TCP hole punch: upgrades a relayed connection to a direct one.
 *
 * libp2p's DCUtR never gets through two MASQUERADE NATs (observed TCP addresses discarded,
 * 198.18.0.0/15 and private ranges skipped, random source ports, a one-sided first dial that
 * leaves stale conntrack state). Instead, over the relayed connection (`/edgemesh/punch/1.0.0`):
 *
 * 1. Each side asks the relay it reaches directly which address it sees (OBSERVE): that is
 *    the NAT's public IP. The punch port is a dedicated local port (a socket cannot connect
 *    from the libp2p listening port); a plain MASQUERADE NAT keeps it as the mapped port.
 * 2. The initiator (lower peer ID) sends CONNECT with its address, the responder answers
 *    with its own, a PING/PONG measures the relayed RTT, and SYNC starts both bursts: the
 *    responder at once, the initiator after half the RTT.
 * 3. Both connect from their punch port to the other's address again and again (a refused
 *    attempt is retried after `retryMs`; a pending one is left to finish) for `windowMs`. The
 *    TCP connection that forms (simultaneous open) is handed to libp2p's own TCP transport and
 *    upgraded like any dial (PSK, Noise, yamux): the initiator as the Noise initiator, the
 *    responder with `initiator: false`. It becomes an ordinary direct libp2p connection.
 *
 * The relayed connection stays open and carries its streams meanwhile; new streams prefer
 * the direct one (paths.ts). A failed punch is retried with exponential backoff while the
 * peer is still reached through a relay only.
 */

import type net from "node:net";
import type { Connection, Stream, Transport, Upgrader } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import type { Libp2p } from "libp2p";
import type { Logger } from "../log/mod.ts";
import { directOpen, isCircuit, relayPeerOf } from "./addrs.ts";
import { WireError } from "./errors.ts";
import type { ComponentsHandle } from "./host.ts";
import { CLAIM_TIMEOUT_MS, type Membership } from "./membership.ts";
import type { TunnelMetrics } from "./metrics.ts";
import {
  decodePunchBody,
  decodePunchPrefix,
  encodePunch,
  PUNCH_PROTOCOL,
  type PunchAddr,
  type PunchMessage,
} from "./punch_wire.ts";
import { connectBurst, freePort, sleep } from "./punch_socket.ts";
import { closeStream, deadline, StreamReader } from "./stream_io.ts";
import type { TaskSet } from "./tasks.ts";

/** Settings of the hole puncher (`TunnelOptions.holePunch*`). */
export interface PunchOptions {
  /** Local TCP port punches are made from; 0 picks a free port for each punch. */
  port: number;
  /** How long both sides keep trying to connect (the burst). */
  windowMs: number;
  /**
   * Pause after a refused attempt before the next one (0: at once). Through NATs whose
   * kernels answer early SYNs with RST, both SYNs must cross within well under a millisecond:
   * the faster the attempts, the sooner they do.
   */
  retryMs: number;
  /** Delay before the first retry after a failed punch; doubles up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
}

export const PUNCH_DEFAULTS: PunchOptions = {
  port: 0,
  windowMs: 5000,
  retryMs: 0,
  backoffMs: 5000,
  maxBackoffMs: 300_000,
};

/** Bound on the exchange over the relayed stream (OBSERVE, CONNECT, PING, SYNC). */
const EXCHANGE_MS = 5000;
/** Time allowed for the libp2p upgrade (PSK, Noise, yamux) once the TCP socket connects. */
const UPGRADE_MS = 5000;

export interface PuncherDeps {
  node: Libp2p<Record<string, unknown>>;
  membership: Membership;
  logger: Logger;
  metrics: TunnelMetrics;
  tasks: TaskSet;
  shutdown: AbortSignal;
  selfId: string;
  /** False: CONNECT requests are refused and no punch is started (OBSERVE is still answered). */
  enabled: boolean;
}

interface PeerState {
  failures: number;
  timer?: ReturnType<typeof setTimeout>;
  running?: Promise<void>;
}

/** Result of one burst. */
export interface BurstResult {
  conn?: Connection;
  attempts: number;
  errors: Record<string, number>;
}

export class HolePuncher {
  #peers = new Map<string, PeerState>();
  #stopped = false;
  /** Punches under way (either role): one at a time, as a burst keeps a core busy. */
  #active = 0;

  constructor(readonly deps: PuncherDeps, readonly opts: PunchOptions) {}

  stop(): void {
    this.#stopped = true;
    for (const s of this.#peers.values()) clearTimeout(s.timer);
  }

  /** Called for every new connection: a relayed one to a peer we lead starts a punch. */
  onConnectionOpen(conn: Connection): void {
    if (!this.deps.enabled || !isCircuit(conn.remoteAddr)) return;
    this.#schedule(conn.remotePeer.toString(), 0);
  }

  /** Called when a connection closes: losing the direct path while relayed punches again. */
  onConnectionClose(conn: Connection): void {
    if (!this.deps.enabled || isCircuit(conn.remoteAddr)) return;
    this.#schedule(conn.remotePeer.toString(), this.opts.backoffMs);
  }

  #conns(peer: string): Connection[] {
    return this.deps.node.getConnections(peerIdFromString(peer)).filter((c) => c.status === "open");
  }

  /** A punch is wanted while the peer is reached through relays only. */
  #wanted(peer: string): Connection | undefined {
    const conns = this.#conns(peer);
    if (directOpen(conns).length > 0) return undefined;
    return conns.find((c) => isCircuit(c.remoteAddr) && relayPeerOf(c.remoteAddr) !== undefined);
  }

  #schedule(peer: string, delayMs: number): void {
    // One side leads: the lower peer ID. The other only answers.
    if (this.#stopped || this.deps.selfId >= peer) return;
    const s = this.#peers.get(peer) ?? { failures: 0 };
    this.#peers.set(peer, s);
    if (s.timer !== undefined || s.running) return;
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (this.#stopped || s.running) return;
      if (this.#active > 0) {
        // Another punch is bursting: come back after its window.
        this.#schedule(peer, this.opts.windowMs + Math.round(Math.random() * 500));
        return;
      }
      this.#active++;
      s.running = this.#lead(peer, s).then((retryInMs) => {
        this.#active--;
        s.running = undefined;
        if (retryInMs !== undefined) this.#schedule(peer, retryInMs);
      });
      this.deps.tasks.track(s.running);
    }, delayMs);
  }

  /** One punch as the initiator; resolves with the delay before the next try, if one is due. */
  async #lead(peer: string, s: PeerState): Promise<number | undefined> {
    if (await this.deps.membership.waitVerified(peer, CLAIM_TIMEOUT_MS) === undefined) {
      return undefined;
    }
    const relayed = this.#wanted(peer);
    if (!relayed || this.#stopped) {
      if (!relayed) this.#peers.delete(peer);
      return undefined;
    }
    const t0 = performance.now();
    const log = this.deps.logger;
    try {
      const r = await this.#initiate(relayed);
      const ms = Math.round(performance.now() - t0);
      if (r.conn) {
        s.failures = 0;
        this.deps.metrics.punches.inc({ role: "initiator", result: "ok" });
        this.deps.metrics.punchSeconds.observe((performance.now() - t0) / 1000);
        log.info("hole punch succeeded: direct connection", {
          peerId: peer,
          node: this.deps.membership.dir.nodeOf(peer),
          ms,
          attempts: r.attempts,
          remote: r.conn.remoteAddr.toString(),
        });
        return undefined;
      }
      return this.#failed(peer, s, `no connection after ${r.attempts} attempts`, r.errors);
    } catch (err) {
      if (this.#stopped || this.deps.shutdown.aborted) return undefined;
      return this.#failed(peer, s, err instanceof Error ? err.message : String(err));
    }
  }

  /** Counts and logs a failed punch; returns the backoff before the next one. */
  #failed(peer: string, s: PeerState, why: string, errors?: Record<string, number>): number {
    s.failures++;
    const next = Math.min(this.opts.backoffMs * 2 ** (s.failures - 1), this.opts.maxBackoffMs);
    this.deps.metrics.punches.inc({ role: "initiator", result: "failed" });
    this.deps.logger.info("hole punch failed; staying on the relay", {
      peerId: peer,
      node: this.deps.membership.dir.nodeOf(peer),
      reason: why,
      errors,
      retryInMs: next,
    });
    return next;
  }

  /** Initiator side of one punch over the relayed connection `relayed`. */
  async #initiate(relayed: Connection): Promise<BurstResult> {
    const peer = relayed.remotePeer.toString();
    const d = deadline(EXCHANGE_MS, this.deps.shutdown);
    let stream: Stream | undefined;
    let reader: StreamReader | undefined;
    try {
      const self = await this.#ownAddr(relayed, d.signal);
      stream = await relayed.newStream(PUNCH_PROTOCOL, {
        signal: d.signal,
        runOnLimitedConnection: true,
      });
      reader = new StreamReader(stream, 4096);
      stream.send(encodePunch({ type: "connect", addrs: [self] }));
      const reply = await readPunch(reader, d.signal);
      if (reply.type === "refuse") throw new WireError(`peer refused the punch: ${reply.reason}`);
      if (reply.type !== "connect") throw new WireError(`expected CONNECT, got ${reply.type}`);
      const t0 = performance.now();
      stream.send(encodePunch({ type: "ping" }));
      expect(await readPunch(reader, d.signal), "pong");
      const rtt = performance.now() - t0;
      stream.send(encodePunch({ type: "sync" }));
      d.clear();
      await sleep(rtt / 2, this.deps.shutdown);
      return await this.burst(reply.addrs[0], self.port, peer, true);
    } finally {
      d.clear();
      reader?.detach();
      if (stream) await closeStream(stream, 500);
    }
  }

  /** Handles an inbound punch stream: OBSERVE from anyone connected, CONNECT from a peer. */
  async handle(stream: Stream, conn: Connection): Promise<void> {
    const reader = new StreamReader(stream, 4096);
    const d = deadline(EXCHANGE_MS, this.deps.shutdown);
    try {
      const first = await readPunch(reader, d.signal);
      if (first.type === "observe") {
        const seen = tcpAddrOf(conn);
        stream.send(
          encodePunch(
            seen ? { type: "observed", addr: seen } : {
              type: "refuse",
              reason: "no-address",
            },
          ),
        );
        return;
      }
      if (first.type !== "connect") throw new WireError(`unexpected punch message ${first.type}`);
      const peer = conn.remotePeer.toString();
      const s = this.#peers.get(peer);
      if (!this.deps.enabled || this.#stopped) {
        stream.send(encodePunch({ type: "refuse", reason: "disabled" }));
        return;
      }
      if (this.#active > 0 || s?.running || directOpen(this.#conns(peer)).length > 0) {
        stream.send(encodePunch({ type: "refuse", reason: "busy" }));
        return;
      }
      if (this.deps.membership.dir.nodeOf(peer) === undefined) {
        throw new WireError("punch request from an unverified peer");
      }
      const state: PeerState = s ?? { failures: 0 };
      this.#peers.set(peer, state);
      let done!: () => void;
      state.running = new Promise<void>((r) => (done = r));
      this.#active++;
      try {
        const self = await this.#ownAddr(conn, d.signal);
        stream.send(encodePunch({ type: "connect", addrs: [self] }));
        expect(await readPunch(reader, d.signal), "ping");
        stream.send(encodePunch({ type: "pong" }));
        expect(await readPunch(reader, d.signal), "sync");
        d.clear();
        const t0 = performance.now();
        const r = await this.burst(first.addrs[0], self.port, peer, false);
        this.deps.metrics.punches.inc({ role: "responder", result: r.conn ? "ok" : "failed" });
        this.deps.logger.info(
          r.conn
            ? "hole punch answered: direct connection"
            : "hole punch answered without a connection",
          {
            peerId: peer,
            node: this.deps.membership.dir.nodeOf(peer),
            ms: Math.round(performance.now() - t0),
            attempts: r.attempts,
            ...(r.conn ? { remote: r.conn.remoteAddr.toString() } : { errors: r.errors }),
          },
        );
      } finally {
        this.#active--;
        done();
        state.running = undefined;
      }
    } catch (err) {
      if (!this.deps.shutdown.aborted) {
        this.deps.logger.debug("punch stream failed", {
          peerId: conn.remotePeer.toString(),
          error: err,
        });
        stream.abort(err instanceof Error ? err : new WireError(String(err)));
      }
    } finally {
      d.clear();
      reader.detach();
      await closeStream(stream, 500);
    }
  }

  /**
   * Our public address for a punch: the NAT's IP as the relay of `relayed` sees us, and our
   * punch port (kept as the mapped port by port-preserving NATs such as plain MASQUERADE).
   */
  async #ownAddr(relayed: Connection, signal: AbortSignal): Promise<PunchAddr> {
    const relayPeer = relayPeerOf(relayed.remoteAddr);
    const toRelay = relayPeer ? directOpen(this.#conns(relayPeer))[0] : undefined;
    if (!toRelay) throw new WireError("no direct connection to the relay to observe our address");
    const ip = await observe(toRelay, signal);
    return { ip, port: this.opts.port || freePort() };
  }

  /**
   * Connects from `localPort` to `remote` again and again until a TCP connection forms or
   * the window closes, then upgrades it through libp2p's TCP transport (`initiator` decides
   * the Noise and yamux roles, as both sides dial).
   */
  async burst(
    remote: PunchAddr,
    localPort: number,
    peer: string,
    initiator: boolean,
  ): Promise<BurstResult> {
    const ma = multiaddr(`/ip4/${remote.ip}/tcp/${remote.port}/p2p/${peer}`);
    const handle = this.deps.node.services.handle as ComponentsHandle;
    const c = handle.components as {
      transportManager: { dialTransportForMultiaddr(ma: unknown): Transport | undefined };
      upgrader: Upgrader;
    };
    const tcp = c.transportManager.dialTransportForMultiaddr(ma) as TcpTransport | undefined;
    if (typeof tcp?._connect !== "function") {
      throw new WireError(`the TCP transport cannot take a connected socket for ${ma}`);
    }
    const r = await connectBurst(remote, localPort, this.opts, this.deps.shutdown);
    if (!r.socket) return { attempts: r.attempts, errors: r.errors };
    const socket = r.socket;
    // Both sides dialed, so both raw connections say "outbound". The responder's must say
    // "inbound" before the upgrade: its wrappers (PSK, Noise) copy the direction, and yamux
    // picks its client/server role from it ("Both endpoints are clients" otherwise).
    const upgrader = initiator ? c.upgrader : {
      upgradeOutbound: (maConn: { direction: string }, o: Record<string, unknown>) => {
        maConn.direction = "inbound";
        return c.upgrader.upgradeOutbound(maConn as never, { ...o, initiator: false } as never);
      },
    } as unknown as Upgrader;
    // The transport's own dial, with its connect step replaced by the socket we hold: the
    // socket becomes a MultiaddrConnection and is upgraded exactly like any TCP dial.
    const handOver = Object.create(tcp) as TcpTransport;
    handOver._connect = () => Promise.resolve(socket);
    const d = deadline(UPGRADE_MS, this.deps.shutdown);
    try {
      const conn = await handOver.dial(
        ma,
        {
          upgrader,
          signal: d.signal,
          initiator,
        } as unknown as Parameters<Transport["dial"]>[1],
      );
      return { conn, attempts: r.attempts, errors: r.errors };
    } catch (err) {
      socket.destroy();
      r.errors[`upgrade: ${(err as Error).name}`] = 1;
      this.deps.logger.debug("punched socket failed to upgrade", { peerId: peer, error: err });
      return { attempts: r.attempts, errors: r.errors };
    } finally {
      d.clear();
    }
  }
}

/** The part of `@libp2p/tcp`'s transport the hand-over uses (`_connect` is in its typings). */
interface TcpTransport extends Transport {
  _connect(ma: unknown, options: unknown): Promise<net.Socket>;
}

/** Asks the peer at the other end of `conn` which address it sees us connect from. */
export async function observe(conn: Connection, signal: AbortSignal): Promise<string> {
  const stream = await conn.newStream(PUNCH_PROTOCOL, { signal, runOnLimitedConnection: true });
  const reader = new StreamReader(stream, 4096);
  try {
    stream.send(encodePunch({ type: "observe" }));
    const m = await readPunch(reader, signal);
    if (m.type === "refuse") throw new WireError(`observation refused: ${m.reason}`);
    if (m.type !== "observed") throw new WireError(`expected OBSERVED, got ${m.type}`);
    return m.addr.ip;
  } finally {
    reader.detach();
    await closeStream(stream, 500);
  }
}

/** Reads one bounded punch message. */
export async function readPunch(reader: StreamReader, signal: AbortSignal): Promise<PunchMessage> {
  const { type, len } = decodePunchPrefix(await reader.readExactly(3, signal));
  return decodePunchBody(type, len ? await reader.readExactly(len, signal) : new Uint8Array());
}

function expect(m: PunchMessage, type: PunchMessage["type"]): void {
  if (m.type !== type) throw new WireError(`expected ${type.toUpperCase()}, got ${m.type}`);
}

/** The IPv4 address and port a direct TCP connection comes from, if it is one. */
export function tcpAddrOf(conn: Connection): PunchAddr | undefined {
  if (isCircuit(conn.remoteAddr)) return undefined;
  const m = /^\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(conn.remoteAddr.toString());
  return m ? { ip: m[1], port: Number(m[2]) } : undefined;
}
