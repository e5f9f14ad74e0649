/**
 * The tunnel: a libp2p host that implements the Dialer. It proves who it is with signed
 * claims, refuses peers that are not cluster nodes, serves `/edgemesh/proxy/1.0.0` to
 * allowed local targets only, and reaches other nodes directly or through the nearest relay.
 */

import type { Connection, PrivateKey, Stream } from "@libp2p/interface";
import { peerIdFromPrivateKey, peerIdFromString } from "@libp2p/peer-id";
import type { Multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";
import {
  type ByteStream,
  type DatagramChannel,
  type Dialer,
  DialError,
  type DialOptions,
  type DialTarget,
  type PathKind,
} from "../contracts/mod.ts";
import type { Service, ServiceState, ServiceStatus } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import { directOpen, isCircuit, isLoopback } from "./addrs.ts";
import { CertWatch } from "./cert_watch.ts";
import { loadOwnIdentity } from "./own_identity.ts";
import { CLAIM_PROTOCOL } from "./claim.ts";
import { type ClaimDht, publishClaim } from "./claim_dht.ts";
import type { ClaimDirectory } from "./directory.ts";
import { Discovery } from "./discovery.ts";
import { ClaimError, TunnelStartError } from "./errors.ts";
import { hostOptions, swarmKey, toMultiaddr } from "./host.ts";
import { Membership } from "./membership.ts";
import { type TunnelMetrics, tunnelMetrics } from "./metrics.ts";
import {
  type RelayNode,
  type ResolvedTunnelOptions,
  resolveOptions,
  type TunnelDeps,
  type TunnelOptions,
} from "./options.ts";
import { PathFinder } from "./paths.ts";
import { type PeerView, peerViews } from "./peer_views.ts";
import { pingOn } from "./ping.ts";
import { HolePuncher, PUNCH_DEFAULTS } from "./punch.ts";
import { PUNCH_PROTOCOL } from "./punch_wire.ts";
import { negotiate, TunnelByteStream, TunnelDatagramChannel } from "./proxy_client.ts";
import { ProxyServer } from "./proxy_server.ts";
import { libp2pRelayHost } from "./relay_host.ts";
import { RelayOffers } from "./relay_offers.ts";
import { SelfRelay } from "./self_relay.ts";
import type { Verdict } from "./reachability.ts";
import { RelayManager, type RelayView } from "./relays.ts";
import { deadline, type StreamReader } from "./stream_io.ts";
import { TaskSet } from "./tasks.ts";
import { PROXY_PROTOCOL } from "./wire.ts";

/** Bound on one DHT put of our claim. */
const PUBLISH_TIMEOUT_MS = 10_000;

const STREAM_LIMITS = {
  maxInboundStreams: 8192,
  maxOutboundStreams: 8192,
  runOnLimitedConnection: true,
};

export interface TunnelStatus {
  node: string;
  peerId: string | null;
  listen: string[];
  peers: PeerView[];
  relays: RelayView[];
  /**
   * This node as a relay: what dial-backs found, and whether it relays now; null when it is
   * no relay candidate (relays are configured and it is not one of them).
   */
  relayService: { reachability: Verdict; relaying: boolean } | null;
  /** The KubeEdge node certificate our claim carries (`identity` set), else null. */
  certificate: { serial: string; validTo: string } | null;
}

export interface PingResult {
  path: PathKind;
  relay?: string;
  rttMs: number;
}

/** The parts that exist while the tunnel runs. */
interface Running {
  node: Libp2p<Record<string, unknown>>;
  membership: Membership;
  relays: RelayManager;
  paths: PathFinder;
  discovery: Discovery;
  server: ProxyServer;
  puncher: HolePuncher;
  selfRelay: SelfRelay;
  offers: RelayOffers;
  timers: ReturnType<typeof setInterval>[];
}

export class Tunnel implements Service, Dialer {
  readonly name = "tunnel";
  readonly options: ResolvedTunnelOptions;
  readonly #log: Logger;
  readonly #m: TunnelMetrics;
  #state: ServiceState = "stopped";
  #detail = "not started";
  #key?: PrivateKey;
  #dir?: ClaimDirectory;
  #run?: Running;
  #membership?: Membership;
  #certWatch?: CertWatch;
  #shutdown = new AbortController();
  #tasks = new TaskSet();
  #peerRtt = new Map<string, number>();
  /** performance.now() of the last bytes received on a direct connection, by peer ID. */
  #rxActivity = new Map<string, number>();
  #rxBlind = false;
  #relayNodes: RelayNode[];
  #stopping?: Promise<void>;

  constructor(readonly deps: TunnelDeps, options: TunnelOptions) {
    this.options = resolveOptions(options);
    this.#relayNodes = options.relayNodes;
    this.#log = deps.logger.child("tunnel");
    this.#m = tunnelMetrics(deps.metrics);
  }

  #now = (): number => (this.deps.now ?? Date.now)();

  /** This node's peer ID (after start). */
  get peerId(): string | undefined {
    return this.#key ? peerIdFromPrivateKey(this.#key).toString() : undefined;
  }

  /** The peer ID bound to `node` by a verified claim (for signature checks elsewhere). */
  peerIdOf(node: string): string | undefined {
    return this.#dir?.peerOf(node);
  }

  /** Listening multiaddrs (with `/p2p/<id>`), for bootstrapPeers of other agents. */
  multiaddrs(): string[] {
    return this.#run?.node.getMultiaddrs().map(String) ?? [];
  }

  #known = (): Set<string> => {
    const s = this.options.knownNodes();
    if (s.has(this.options.nodeName)) return s;
    return new Set([...s, this.options.nodeName]);
  };

  #relaySelf(): RelayNode | undefined {
    return this.#relayNodes.find((r) => r.nodeName === this.options.nodeName);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#state !== "stopped" && this.#state !== "failed") return;
    this.#state = "starting";
    this.#detail = "starting";
    this.#stopping = undefined;
    this.#shutdown = new AbortController();
    this.#tasks = new TaskSet();
    try {
      signal.throwIfAborted();
      await this.#start(signal);
    } catch (err) {
      await this.#teardown();
      this.#state = "failed";
      this.#detail = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }

  async #start(signal: AbortSignal): Promise<void> {
    const o = this.options;
    const shutdown = this.#shutdown.signal;
    const own = await loadOwnIdentity(o, this.#known, this.#now, this.#log);
    const { key, selfId, dir, attestor } = own;
    this.#key = key;
    this.#dir = dir;
    // The membership and the gater need the host, which needs them: a late-bound reference.
    const ref: { node?: Libp2p<Record<string, unknown>> } = {};
    const membership = this.#membership = new Membership({
      dir,
      logger: this.#log.child("membership"),
      metrics: this.#m,
      tasks: this.#tasks,
      now: this.#now,
      shutdown,
      hangUp: (p) => ref.node?.hangUp(peerIdFromString(p)).catch(() => {}) ?? Promise.resolve(),
      forwardClaims: !this.deps.hooks?.noClaimForwarding,
    });
    const relaySelf = this.#relaySelf();
    const n = ref.node = await createLibp2p(hostOptions({
      options: o,
      privateKey: key,
      announce: relaySelf
        ? relaySelf.advertiseAddress.map((a) => toMultiaddr(a, o.listenPort))
        : [],
      psk: o.psk ? await swarmKey(o.psk) : undefined,
      claimVerifier: attestor,
      gater: {
        denyDialMultiaddr: (ma) => this.deps.hooks?.denyDialAddress?.(ma.toString()) ?? false,
        denyDialPeer: (p) => membership.isDenied(p.toString()),
        denyInboundEncryptedConnection: (p) => membership.isDenied(p.toString()),
        denyOutboundEncryptedConnection: (p) => membership.isDenied(p.toString()),
        // Loopback addresses of other peers are useless unless we ourselves live on loopback.
        filterMultiaddrForPeer: (_p, ma) =>
          !isLoopback(ma) || (ref.node?.getMultiaddrs().some(isLoopback) ?? true),
      },
    }));
    const server = new ProxyServer({
      localTargets: this.deps.localTargets,
      logger: this.#log.child("proxy"),
      metrics: this.#m,
      headerTimeoutMs: o.headerTimeoutMs,
      udpIdleTimeoutMs: o.udpIdleTimeoutMs,
      shutdown,
    });
    const offers = new RelayOffers(n);
    const relays = new RelayManager(
      libp2pRelayHost(
        n,
        membership,
        (p) => this.#rxBlind ? performance.now() : this.#rxActivity.get(p) ?? 0,
        this.deps.hooks,
        offers,
      ),
      this.#log.child("relays"),
      this.#m,
      {
        probePeriodMs: o.relayProbePeriodMs,
        livenessMs: Math.max(50, Math.round(o.monitorPingIntervalMs / 4)),
        livenessTimeoutMs: o.monitorPingIntervalMs,
        maxCandidates: o.maxCandidates,
        reserve: !relaySelf,
      },
    );
    const run: Running = {
      node: n,
      membership,
      relays,
      server,
      paths: new PathFinder({
        node: n,
        membership,
        relays,
        tasks: this.#tasks,
        metrics: this.#m,
        knownNodes: this.#known,
        now: this.#now,
        shutdown,
        dialTimeoutMs: o.dialTimeoutMs,
        relayOnly: o.relayOnly,
      }),
      discovery: new Discovery({
        node: n,
        membership,
        tasks: this.#tasks,
        logger: this.#log.child("discovery"),
        shutdown,
        bootstrapPeers: o.bootstrapPeers,
        finderPeriodMs: o.finderPeriodMs,
      }),
      puncher: new HolePuncher({
        node: n,
        membership,
        logger: this.#log.child("punch"),
        metrics: this.#m,
        tasks: this.#tasks,
        shutdown,
        selfId,
        enabled: o.enableHolePunch && !o.relayOnly,
      }, {
        ...PUNCH_DEFAULTS,
        port: o.holePunchPort,
        windowMs: o.holePunchWindowMs,
        backoffMs: o.holePunchBackoffMs,
      }),
      timers: [],
      offers,
      selfRelay: new SelfRelay({
        node: n,
        membership,
        relays,
        offers,
        logger: this.#log.child("relay-role"),
        metrics: this.#m,
        tasks: this.#tasks,
        shutdown,
        now: this.#now,
        isLocalNet: this.deps.hooks?.isLocalNetwork,
      }, {
        nodeName: o.nodeName,
        listenPort: o.listenPort,
        relayNodes: this.#relayNodes,
        selfRelay: o.selfRelay,
        reachability: { periodMs: o.reachabilityPeriodMs },
      }),
    };
    this.#run = run;
    await n.handle(CLAIM_PROTOCOL, (s, c) => this.#tasks.track(membership.answer(s, c), true), {
      maxInboundStreams: 32,
      maxOutboundStreams: 32,
      runOnLimitedConnection: true,
    });
    // Listed relays relay from the start; reachability may stop them, or start others.
    await run.selfRelay.install();
    // Always handled: OBSERVE tells peers their public address even where punching is off;
    // CONNECT is refused then.
    await n.handle(PUNCH_PROTOCOL, (s, c) => this.#tasks.track(run.puncher.handle(s, c)), {
      maxInboundStreams: 16,
      maxOutboundStreams: 16,
      runOnLimitedConnection: true,
    });
    await n.handle(
      PROXY_PROTOCOL,
      (s, c) => this.#tasks.track(this.#onProxyStream(s, c)),
      STREAM_LIMITS,
    );
    n.addEventListener("connection:open", (e) => {
      this.#watchActivity(e.detail);
      membership.onConnectionOpen(e.detail);
      run.puncher.onConnectionOpen(e.detail);
      run.selfRelay.onConnectionOpen(e.detail);
    });
    n.addEventListener("connection:close", (e) => this.#onConnectionClose(e.detail));
    n.addEventListener("peer:discovery", (e) => run.discovery.dialFound(e.detail.id));
    try {
      await n.start();
    } catch (err) {
      const where = `${o.listenAddresses.join(", ") || "0.0.0.0"}:${o.listenPort}`;
      throw new TunnelStartError(
        `Cannot start the tunnel on ${where}: ${err instanceof Error ? err.message : err}`,
        { cause: err },
      );
    }
    this.#m.peers.collect((set) => {
      const counts: Record<string, number> = { "tunnel-direct": 0, "tunnel-relay": 0 };
      for (const p of this.#peerViews()) counts[p.path]++;
      for (const [path, count] of Object.entries(counts)) set(count, { path });
    });
    this.#m.reservations.collect((set) => {
      for (const r of relays.view()) set(r.reserved ? 1 : 0, { relay: r.node, role: r.role });
    });
    this.#m.relayRtt.collect((set) => {
      for (const r of relays.view()) if (r.rttMs !== null) set(r.rttMs / 1000, { relay: r.node });
    });
    relays.setRelays(this.#relayList());
    relays.start();
    if (attestor && o.identity) {
      const watch = this.#certWatch = await CertWatch.start({
        files: o.identity,
        nodeName: o.nodeName,
        logger: this.#log.child("identity"),
        now: this.#now,
        onResult: (result) => this.#m.identityReloads.inc({ result }),
        onRenewed: async (next) => {
          await own.renew(next);
          this.#publishClaim();
          // Peers learn the renewed claim now, not at the next heartbeat.
          await Promise.allSettled(
            n.getConnections().filter((c) => c.status === "open").map((c) =>
              membership.exchange(c)
            ),
          );
        },
      }, attestor);
      run.timers.push(
        setInterval(() => this.#tasks.track(watch.check()), o.identityCheckMs),
      );
    }
    this.#tasks.track(run.discovery.bootstrap(), true);
    run.timers.push(
      setInterval(() => this.#tasks.track(run.discovery.find(), true), o.finderPeriodMs),
    );
    run.timers.push(
      setInterval(() => {
        this.#tasks.track(run.discovery.heartbeat());
        this.#publishClaim();
      }, o.heartbeatPeriodMs),
    );
    // Once the first bootstrap had its chance to give the DHT some peers.
    this.#tasks.track(this.#tasks.discoverySettled().then(() => this.#publishClaim()));
    signal.throwIfAborted();
    const listen = n.getMultiaddrs().map(String);
    this.#state = "ready";
    this.#detail = `listening on ${listen.join(", ")}`;
    this.#log.info("tunnel started", { peerId: selfId, listen, relay: !!relaySelf });
  }

  /** Stores our current claim in the DHT (in the background, bounded in time). */
  #publishClaim(): void {
    const run = this.#run;
    const dht = run?.node.services.dht as ClaimDht | undefined;
    if (!run || !dht || !this.#dir || this.#shutdown.signal.aborted) return;
    const d = deadline(PUBLISH_TIMEOUT_MS, this.#shutdown.signal);
    this.#tasks.track(
      publishClaim(dht, this.#dir.self, d.signal).then(
        () => this.#log.debug("claim stored in the DHT"),
        (err) => this.#log.debug("cannot store our claim in the DHT yet", { error: err }),
      ).finally(() => d.clear()),
    );
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#state === "stopped") return;
      this.#state = "stopping";
      await this.#teardown();
      this.#state = "stopped";
      this.#detail = "stopped";
    })();
    return this.#stopping;
  }

  async #teardown(): Promise<void> {
    this.#shutdown.abort();
    const run = this.#run;
    this.#run = undefined;
    this.#certWatch = undefined;
    for (const t of run?.timers ?? []) clearInterval(t);
    run?.relays.stop();
    run?.puncher.stop();
    await run?.selfRelay.stop();
    run?.offers.close();
    this.#membership?.releaseWaiters();
    if (run) await run.node.stop();
    await this.#tasks.settled();
    await this.#dir?.pins.flush();
  }

  status(): ServiceStatus {
    if (this.#state === "ready" && this.#relayNodes.length > 0 && !this.#relaySelf()) {
      const reserved = this.#run?.relays.view().filter((r) => r.reserved).length ?? 0;
      if (reserved === 0) {
        return { state: "degraded", detail: `${this.#detail}; no relay reservation yet` };
      }
    }
    return { state: this.#state, detail: this.#detail };
  }

  /** Peers and relays for `/api/v1/status`. */
  snapshot(): TunnelStatus {
    const self = this.relayState();
    return {
      node: this.options.nodeName,
      peerId: this.peerId ?? null,
      listen: this.multiaddrs(),
      peers: this.#peerViews(),
      relays: this.#run?.relays.view() ?? [],
      // Null for a node that neither relays nor checks (it is no relay candidate).
      relayService: self && (self.checking || self.relaying)
        ? { reachability: self.verdict, relaying: self.relaying }
        : null,
      certificate: this.#certWatch
        ? {
          serial: this.#certWatch.current.cert.serialNumber,
          validTo: this.#certWatch.current.cert.validTo,
        }
        : null,
    };
  }

  /** This node's reachability verdict and whether it relays now (dial-back checks). */
  relayState(): { verdict: Verdict; relaying: boolean; checking: boolean } | undefined {
    const r = this.#run?.selfRelay;
    return r && { verdict: r.verdict, relaying: r.serving, checking: r.checking };
  }

  /** Proxy streams open on all connections (both directions); for leak checks. */
  openProxyStreams(): number {
    let n = 0;
    for (const c of this.#run?.node.getConnections() ?? []) {
      for (const s of c.streams) if (s.protocol === PROXY_PROTOCOL) n++;
    }
    return n;
  }

  /** Replaces the relay list at run time (config hot reload). */
  setRelayNodes(relays: RelayNode[]): void {
    this.#relayNodes = relays;
    this.#run?.relays.setRelays(this.#relayList());
    this.#run?.selfRelay.setRelayNodes(relays);
  }

  #relayList(): { node: string; addrs: Multiaddr[] }[] {
    const out: { node: string; addrs: Multiaddr[] }[] = [];
    for (const r of this.#relayNodes) {
      if (r.nodeName === this.options.nodeName) continue;
      const addrs: Multiaddr[] = [];
      for (const a of r.advertiseAddress) {
        try {
          addrs.push(toMultiaddr(a, this.options.listenPort));
        } catch (err) {
          this.#log.warn("ignoring bad relay address", {
            relay: r.nodeName,
            address: a,
            error: err,
          });
        }
      }
      if (addrs.length) out.push({ node: r.nodeName, addrs });
    }
    return out;
  }

  /**
   * Records when bytes last arrived on a direct connection (any bytes: data, window updates,
   * pings), so that a relay busy forwarding is told apart from a hung one whose pings time out.
   */
  #watchActivity(conn: Connection): void {
    if (isCircuit(conn.remoteAddr)) return;
    // libp2p keeps the raw connection as `maConn`; its 'message' events are broadcast, so an
    // extra listener takes nothing from the muxer.
    const raw = (conn as unknown as { maConn?: EventTarget }).maConn;
    const peer = conn.remotePeer.toString();
    if (typeof raw?.addEventListener !== "function") {
      // Without byte-level activity a busy relay would look hung: leave hung detection to
      // the libp2p connection monitor (slower, never wrong about busy links).
      if (!this.#rxBlind) {
        this.#log.warn("cannot observe connection activity; hung relays are detected slowly");
      }
      this.#rxBlind = true;
      return;
    }
    raw.addEventListener("message", () => this.#rxActivity.set(peer, performance.now()));
  }

  #onConnectionClose(conn: Connection): void {
    const run = this.#run;
    if (!run || this.#shutdown.signal.aborted) return;
    run.puncher.onConnectionClose(conn);
    run.selfRelay.onConnectionClose(conn);
    if (directOpen(run.node.getConnections(conn.remotePeer)).length === 0) {
      run.relays.onDisconnected(conn.remotePeer.toString());
    }
  }

  #peerViews(): PeerView[] {
    const run = this.#run;
    const dir = this.#dir;
    if (!run || !dir) return [];
    return peerViews({
      connections: run.node.getConnections(),
      nodeOf: (p) => dir.nodeOf(p),
      relayOrder: run.relays.dialOrder().map((r) => r.peerId),
      relayOnly: this.options.relayOnly,
      rtt: (p) => this.#peerRtt.get(p),
    });
  }

  #openProxy<C>(
    target: DialTarget,
    options: DialOptions | undefined,
    wrap: (s: Stream, r: StreamReader, path: PathKind, relay?: string) => C,
  ): Promise<C> {
    const run = this.#run;
    const proto = target.protocol;
    if (!run) {
      return Promise.reject(new DialError("unreachable", target, "the tunnel is not running"));
    }
    return run.paths.withConnection(
      target,
      options,
      async (conn, path, relay, signal, openSignal) => {
        const stream = await conn.newStream(PROXY_PROTOCOL, {
          signal: openSignal,
          ...STREAM_LIMITS,
        });
        const reader = await negotiate(
          stream,
          target,
          this.options.nodeName,
          signal,
        );
        this.#m.streams.inc({ direction: "out", protocol: proto, path, result: "ok" });
        return wrap(stream, reader, path, relay);
      },
    ).catch((err) => {
      const code = err instanceof DialError ? err.code : "unreachable";
      this.#m.streams.inc({ direction: "out", protocol: proto, path: "none", result: code });
      throw err;
    });
  }

  dialStream(target: DialTarget & { protocol: "tcp" }, options?: DialOptions): Promise<ByteStream> {
    const t = { metrics: this.#m, onClose: () => {} };
    return this.#openProxy(
      target,
      options,
      (s, r, path, relay) => new TunnelByteStream(s, r, path, relay, t),
    );
  }

  dialDatagram(
    target: DialTarget & { protocol: "udp" },
    options?: DialOptions,
  ): Promise<DatagramChannel> {
    const t = { metrics: this.#m, onClose: () => {} };
    return this.#openProxy(
      target,
      options,
      (s, r, path, relay) => new TunnelDatagramChannel(s, r, path, relay, t),
    );
  }

  /** Round-trip time to `node` over the path a new stream would take (`edgemesh ping`). */
  ping(node: string, options?: DialOptions): Promise<PingResult> {
    const target: DialTarget = { node, ip: "0.0.0.0", port: 0, protocol: "tcp" };
    const run = this.#run;
    if (!run) {
      return Promise.reject(new DialError("unreachable", target, "the tunnel is not running"));
    }
    return run.paths.withConnection(target, options, async (conn, path, relay, signal) => {
      const rttMs = await pingOn(conn, signal);
      this.#peerRtt.set(conn.remotePeer.toString(), rttMs);
      return relay ? { path, relay, rttMs } : { path, rttMs };
    });
  }

  async #onProxyStream(stream: Stream, conn: Connection): Promise<void> {
    const run = this.#run;
    const node = await run?.membership.waitVerified(
      conn.remotePeer.toString(),
      this.options.headerTimeoutMs,
    );
    if (!run || node === undefined) {
      this.#m.rejects.inc({ reason: "unverified" });
      stream.abort(new ClaimError("unknown-node", "proxy stream from an unverified peer"));
      return;
    }
    const path: PathKind = isCircuit(conn.remoteAddr) ? "tunnel-relay" : "tunnel-direct";
    this.#m.streams.inc({ direction: "in", protocol: "any", path, result: "ok" });
    await run.server.serve(stream, node);
  }
}
