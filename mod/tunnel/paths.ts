/**
 * Path choice for a new stream to a node: an open direct connection; else a new direct
 * connection raced against the relays (the direct dial gets a short head start, then the
 * primary relay, the standby and the other relays are tried while it goes on; a late direct
 * connection serves later streams). Failed direct dials are remembered for a while so that
 * streams to peers behind NAT go straight to the relay; concurrent dials of the same path
 * share one connection attempt.
 */

import type { Connection, PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import type { Libp2p } from "libp2p";
import { DialError, type DialOptions, type DialTarget, type PathKind } from "../contracts/mod.ts";
import { directOpen, isCircuit, relayPeerOf } from "./addrs.ts";
import { type ClaimDht, findClaim } from "./claim_dht.ts";
import type { Membership } from "./membership.ts";
import type { TunnelMetrics } from "./metrics.ts";
import type { RelayManager } from "./relays.ts";
import { deadline } from "./stream_io.ts";
import type { TaskSet } from "./tasks.ts";

/** After a failed direct dial, go straight to relays for this long. */
export const DIRECT_RETRY_MS = 30_000;
const DIRECT_ATTEMPT_MS = 1500;
/** How long a new direct dial runs alone before the relays are tried alongside it. */
export const DIRECT_HEAD_START_MS = 250;
const RELAY_ATTEMPT_MS = 2000;
/** Bound on opening a stream on a connection when other paths remain (a hung relay). */
const STREAM_OPEN_MS = 1000;
const PREWARM_TIMEOUT_MS = 10_000;
/** Bound on looking a node's claim up in the DHT (a Node that runs no agent has none). */
const DHT_LOOKUP_MS = 2000;

/** Uses a connection: `signal` bounds the whole operation, `openSignal` opening the stream. */
export type UseConnection<T> = (
  conn: Connection,
  path: PathKind,
  relay: string | undefined,
  signal: AbortSignal,
  openSignal: AbortSignal,
) => Promise<T>;

export interface PathFinderDeps {
  node: Libp2p<Record<string, unknown>>;
  membership: Membership;
  relays: RelayManager;
  tasks: TaskSet;
  metrics: TunnelMetrics;
  knownNodes: () => Set<string>;
  now: () => number;
  shutdown: AbortSignal;
  dialTimeoutMs: number;
  /** Never use a direct connection to the target (relays are still reached directly). */
  relayOnly?: boolean;
}

interface RawDialer {
  dial(ma: Multiaddr, options: { signal: AbortSignal }): Promise<Connection>;
}

export class PathFinder {
  #directFailed = new Map<string, number>();
  #dialing = new Map<string, Promise<Connection>>();

  constructor(readonly deps: PathFinderDeps) {}

  /**
   * Finds the peer ID of `node`: from the claims held, else by asking connected peers for
   * theirs, else in the DHT.
   */
  async resolvePeer(target: DialTarget, signal: AbortSignal): Promise<string> {
    const { dir } = this.deps.membership;
    if (!this.deps.knownNodes().has(target.node)) {
      throw new DialError("unreachable", target, `"${target.node}" is not a cluster node`);
    }
    let id = dir.peerOf(target.node);
    if (id) return id;
    const aborted = new Promise((r) => signal.addEventListener("abort", r, { once: true }));
    // Claims may be on their way already: a bootstrap dial or an exchange in flight.
    await Promise.race([this.deps.tasks.discoverySettled(), aborted]);
    id = dir.peerOf(target.node);
    if (id) return id;
    const seen = new Set<string>();
    const conns = this.deps.node.getConnections().filter((c) => {
      const p = c.remotePeer.toString();
      if (c.status !== "open" || seen.has(p)) return false;
      seen.add(p);
      return true;
    });
    await Promise.race([
      Promise.allSettled(conns.map((c) => this.deps.membership.exchange(c))),
      aborted,
    ]);
    id = dir.peerOf(target.node);
    if (id) return id;
    // No connected peer holds its claim: the DHT may (every node stores its own there).
    const dht = this.deps.node.services.dht as ClaimDht | undefined;
    const lookup = AbortSignal.any([signal, AbortSignal.timeout(DHT_LOOKUP_MS)]);
    const found = dht && !signal.aborted ? await findClaim(dht, target.node, lookup) : undefined;
    if (found && (await dir.check(found)).verdict === "ok") {
      id = dir.peerOf(target.node);
      if (id) return id;
    }
    throw new DialError("unreachable", target, "no peer has announced this node yet");
  }

  /**
   * Runs `use` on a connection to the target's node, trying paths in order. Transport
   * failures move on to the next path; a DialError from `use` is final.
   */
  async withConnection<T>(
    target: DialTarget,
    options: DialOptions | undefined,
    use: UseConnection<T>,
  ): Promise<T> {
    const total = options?.timeoutMs ?? this.deps.dialTimeoutMs;
    const parent = options?.signal
      ? AbortSignal.any([options.signal, this.deps.shutdown])
      : this.deps.shutdown;
    const outer = deadline(total, parent);
    const t0 = performance.now();
    const errors: unknown[] = [];
    const sub = (ms: number) => AbortSignal.any([outer.signal, AbortSignal.timeout(ms)]);
    /**
     * Uses `conn`; the path and relay are read from the connection itself. `openMs` bounds
     * opening the stream when other paths remain to be tried.
     */
    const attempt = async (
      conn: Connection,
      openMs?: number,
    ): Promise<{ ok: true; v: T } | { ok: false }> => {
      const relayPeer = relayPeerOf(conn.remoteAddr);
      const path: PathKind = isCircuit(conn.remoteAddr) ? "tunnel-relay" : "tunnel-direct";
      const relay = relayPeer === undefined
        ? undefined
        : (this.deps.relays.nodeOfPeer(relayPeer) ?? this.deps.membership.dir.nodeOf(relayPeer) ??
          relayPeer);
      try {
        const v = await use(conn, path, relay, outer.signal, openMs ? sub(openMs) : outer.signal);
        this.deps.metrics.dialSeconds.observe((performance.now() - t0) / 1000, { path });
        return { ok: true, v };
      } catch (err) {
        if (err instanceof DialError) throw err;
        errors.push(err);
        return { ok: false };
      }
    };
    try {
      const peerId = await this.resolvePeer(target, outer.signal);
      const pid = peerIdFromString(peerId);
      const node = this.deps.node;
      const open = () => node.getConnections(pid).filter((c) => c.status === "open");
      const isRelay = this.deps.relays.dialOrder().some((r) => r.peerId === peerId);
      const direct = !this.deps.relayOnly || isRelay;
      // 1. an open direct connection
      for (const c of direct ? directOpen(open()) : []) {
        const r = await attempt(c, STREAM_OPEN_MS);
        if (r.ok) return r.v;
      }
      // 2. a new direct connection, unless one failed recently: alone for a head start,
      // then raced against the relays.
      let late: Promise<Connection | undefined> | undefined;
      if (
        direct && (this.#directFailed.get(peerId) ?? 0) <= this.deps.now() && !outer.signal.aborted
      ) {
        late = this.#dialDirect(pid, errors);
        const first = await Promise.race([
          late,
          new Promise<"late">((resolve) => {
            const t = setTimeout(() => resolve("late"), DIRECT_HEAD_START_MS);
            late!.finally(() => clearTimeout(t));
          }),
        ]);
        if (first !== "late") {
          late = undefined;
          if (first) {
            const r = await attempt(first, STREAM_OPEN_MS);
            if (r.ok) return r.v;
          }
        }
      }
      // 3. relays: primary, standby, the others
      const order = this.deps.relays.dialOrder();
      for (let i = 0; i < order.length && !outer.signal.aborted; i++) {
        const r = order[i];
        if (r.peerId === peerId) continue;
        const last = i === order.length - 1;
        const openMs = last ? undefined : STREAM_OPEN_MS;
        const existing = open().find((c) => relayPeerOf(c.remoteAddr) === r.peerId);
        if (existing) {
          const res = await attempt(existing, openMs);
          if (res.ok) {
            this.#prewarm(peerId, order, i);
            return res.v;
          }
        }
        const relayConn = directOpen(node.getConnections(peerIdFromString(r.peerId)))[0];
        if (!relayConn) continue;
        try {
          const base = relayConn.remoteAddr.toString().replace(/\/p2p\/[^/]+$/, "");
          const circuit = multiaddr(`${base}/p2p/${r.peerId}/p2p-circuit/p2p/${peerId}`);
          const c = await this.#dialOnce(
            `${peerId}@${r.peerId}`,
            () => this.#dialCircuit(circuit, sub(last && !late ? total : RELAY_ATTEMPT_MS)),
          );
          const res = await attempt(c, openMs);
          if (res.ok) {
            this.#prewarm(peerId, order, i);
            return res.v;
          }
        } catch (err) {
          if (err instanceof DialError) throw err;
          errors.push(err);
        }
      }
      // 4. no relay worked: the direct dial still under way is the last chance
      const c = late && !outer.signal.aborted ? await late : undefined;
      if (c) {
        const r = await attempt(c);
        if (r.ok) return r.v;
      }
      if (outer.signal.aborted) {
        throw new DialError("timeout", target, `no path within ${total} ms`, {
          cause: errors.at(-1),
        });
      }
      throw new DialError(
        "unreachable",
        target,
        `no direct or relayed path (${errors.length} attempts failed)`,
        {
          cause: errors.at(-1),
        },
      );
    } catch (err) {
      if (err instanceof DialError) throw err;
      if (outer.signal.aborted) {
        throw new DialError("timeout", target, `no path within ${total} ms`, { cause: err });
      }
      throw new DialError("unreachable", target, String(err), { cause: err });
    } finally {
      outer.clear();
    }
  }

  /**
   * After a relayed stream went through `order[used]`, opens a connection to the same peer
   * through the next relay too (in the background), so that when the relay in use dies new
   * streams find a connection through the standby already open.
   */
  #prewarm(peerId: string, order: { node: string; peerId: string }[], used: number): void {
    const next = order.slice(used + 1).find((r) => r.peerId !== peerId);
    if (!next) return;
    const node = this.deps.node;
    const pid = peerIdFromString(peerId);
    const has = node.getConnections(pid).some((c) =>
      c.status === "open" && relayPeerOf(c.remoteAddr) === next.peerId
    );
    const relayConn = directOpen(node.getConnections(peerIdFromString(next.peerId)))[0];
    if (has || !relayConn || this.#dialing.has(`${peerId}@${next.peerId}`)) return;
    const base = relayConn.remoteAddr.toString().replace(/\/p2p\/[^/]+$/, "");
    const circuit = multiaddr(`${base}/p2p/${next.peerId}/p2p-circuit/p2p/${peerId}`);
    const d = deadline(PREWARM_TIMEOUT_MS, this.deps.shutdown);
    this.deps.tasks.track(
      this.#dialOnce(
        `${peerId}@${next.peerId}`,
        () => this.#dialCircuit(circuit, d.signal),
      )
        .then(() => d.clear(), () => d.clear()),
    );
  }

  /**
   * Dials the target's direct addresses; resolves to a direct connection or undefined (the
   * failure is pushed on `errors` and remembered for DIRECT_RETRY_MS). Never rejects.
   */
  async #dialDirect(pid: PeerId, errors: unknown[]): Promise<Connection | undefined> {
    const peerId = pid.toString();
    const addrs = await this.#directAddrs(pid);
    if (!addrs.length) return undefined;
    const d = deadline(DIRECT_ATTEMPT_MS, this.deps.shutdown);
    const p = this.#dialOnce(
      `${peerId}@direct`,
      () => this.deps.node.dial(addrs, { signal: d.signal, force: true }),
    ).then((c) => {
      // The dial may join one under way through a relay: only a direct result counts.
      if (!isCircuit(c.remoteAddr)) {
        this.#directFailed.delete(peerId);
        return c;
      }
      this.#directFailed.set(peerId, this.deps.now() + DIRECT_RETRY_MS);
      return undefined;
    }, (err) => {
      errors.push(err);
      this.#directFailed.set(peerId, this.deps.now() + DIRECT_RETRY_MS);
      return undefined;
    }).finally(() => d.clear());
    this.deps.tasks.track(p);
    return await p;
  }

  /**
   * Opens a connection through a relay on the circuit transport itself. libp2p's dial queue
   * merges every dial to a peer into the one already pending for it, so a discovery or DHT
   * dial stuck on an unreachable LAN address would hold the relayed dial behind it for
   * seconds; the upgrader still registers the connection with the connection manager.
   */
  #dialCircuit(circuit: Multiaddr, signal: AbortSignal): Promise<Connection> {
    const tm = (this.deps.node as unknown as { components?: { transportManager?: RawDialer } })
      .components?.transportManager;
    if (typeof tm?.dial !== "function") {
      return this.deps.node.dial(circuit, { signal, force: true });
    }
    return tm.dial(circuit, { signal });
  }

  /** Joins a dial already under way for the same key instead of opening a second connection. */
  #dialOnce(key: string, dial: () => Promise<Connection>): Promise<Connection> {
    let p = this.#dialing.get(key);
    if (!p) {
      p = dial().finally(() => this.#dialing.delete(key));
      this.#dialing.set(key, p);
    }
    return p;
  }

  async #directAddrs(pid: PeerId): Promise<Multiaddr[]> {
    let addrs: Multiaddr[];
    try {
      addrs = (await this.deps.node.peerStore.get(pid)).addresses.map((a) => a.multiaddr);
    } catch {
      // Not in the peer store: no direct address known.
      return [];
    }
    return addrs.filter((a) => !isCircuit(a)).map((a) =>
      a.toString().includes("/p2p/") ? a : a.encapsulate(`/p2p/${pid.toString()}`)
    );
  }
}
