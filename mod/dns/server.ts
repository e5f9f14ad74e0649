/**
 * The DNS service (lifecycle contract): binds UDP and TCP on every listen address, keeps the
 * cluster zone compiled from the catalog and health view, forwards the rest.
 */

import type { HealthView } from "../contracts/mod.ts";
import type { ServiceCatalog } from "../kube/catalog.ts";
import type { Service, ServiceState, ServiceStatus } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import { AnswerCache } from "./cache.ts";
import { BatchedUdpListener } from "./batched_listener.ts";
import { DnsBindError, DnsOptionsError, formatHostPort } from "./errors.ts";
import { batchedPathAvailable, BindFailure } from "./ffi_libc.ts";
import { Forwarder, type UpstreamStatus } from "./forwarder.ts";
import { DnsHandler } from "./handler.ts";
import { type DnsMetrics, dnsMetrics } from "./metrics.ts";
import { type DnsOptions, type ResolvedDnsOptions, resolveDnsOptions } from "./options.ts";
import { TcpListener } from "./tcp_listener.ts";
import { PortableUdpListener, type UdpListener, type UdpPath } from "./udp_listener.ts";
import { UpstreamClient } from "./upstream.ts";
import { ClusterZone, type PodLookup } from "./zone.ts";

const READY_TIMEOUT_MS = 10_000;

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a UDP listener is built from. */
export interface UdpListenerArgs {
  hostname: string;
  port: number;
  handler: DnsHandler;
  zone: ClusterZone;
  metrics: DnsMetrics;
  logger: Logger;
  maxUdpPayload: number;
}

/** Creates the UDP listener for one address. */
export type UdpListenerFactory = (args: UdpListenerArgs) => UdpListener;

/** `Deno.listenDatagram` with a reused receive buffer; works everywhere. */
export const portableUdp: UdpListenerFactory = (a) =>
  new PortableUdpListener(a.hostname, a.port, a.handler, a.metrics, a.logger);

/** recvmmsg/sendmmsg in a worker through FFI (Linux x86_64/aarch64, --allow-ffi). */
export const batchedUdp: UdpListenerFactory = (a) =>
  new BatchedUdpListener(
    a.hostname,
    a.port,
    a.handler,
    a.zone,
    a.metrics,
    a.logger,
    a.maxUdpPayload,
  );

export interface DnsDeps {
  logger: Logger;
  metrics: Registry;
  catalog: ServiceCatalog;
  /** Default: no health module (ready endpoints are served). */
  health?: HealthView;
  /** True when a node's cloud Ready condition is False/Unknown (see `endpointServed`). */
  nodeCloudNotReady?: (node: string) => boolean;
  /** When given, pod names are answered only for existing pods ("pods verified"). */
  pods?: PodLookup;
  /** Epoch ms; cache ages and the SOA serial. Default `Date.now`. */
  now?: () => number;
  /** Overrides `options.udpPath` (tests, other platforms). */
  udpListener?: UdpListenerFactory;
}

export interface DnsListenerStatus {
  address: string;
  udp: UdpPath;
  tcp: boolean;
}

export interface DnsStatusDetail {
  state: ServiceState;
  listeners: DnsListenerStatus[];
  /** Which UDP receive path is in use. */
  udpPath: UdpPath | "none";
  upstreams: UpstreamStatus[];
  clusterNames: number;
  cacheEntries: number;
  tcpConnections: number;
}

export class DnsServer implements Service {
  readonly name = "dns";
  readonly options: ResolvedDnsOptions;
  #state: ServiceState = "stopped";
  #detail = "not started";
  #udp: UdpListener[] = [];
  #tcp: TcpListener[] = [];
  #loops: Promise<void>[] = [];
  #unsubscribe: (() => void)[] = [];
  #client?: UpstreamClient;
  #cache?: AnswerCache;
  #forwarder?: Forwarder;
  #handler?: DnsHandler;
  #zone?: ClusterZone;
  #flushTimer?: ReturnType<typeof setInterval>;
  #stopping?: Promise<void>;
  #metrics: DnsMetrics;
  #log: Logger;

  /** Throws DnsOptionsError when the options are unusable. */
  constructor(private readonly deps: DnsDeps, options: DnsOptions) {
    this.options = resolveDnsOptions(options);
    this.#metrics = dnsMetrics(deps.metrics);
    this.#log = deps.logger;
  }

  /** The bound port (after start; the configured one before). */
  get port(): number {
    return this.#udp[0]?.port ?? this.options.listenPort;
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#state !== "stopped") throw new Error(`DNS server cannot start while ${this.#state}`);
    signal.throwIfAborted();
    this.#state = "starting";
    this.#stopping = undefined;
    const o = this.options;
    const now = this.deps.now ?? Date.now;
    try {
      const zone = new ClusterZone({
        catalog: this.deps.catalog,
        health: this.deps.health,
        nodeCloudNotReady: this.deps.nodeCloudNotReady,
        pods: this.deps.pods,
        now,
      }, { domain: o.domain, ttlSeconds: o.ttlSeconds });
      zone.rebuild();
      this.#zone = zone;
      this.#unsubscribe.push(this.deps.catalog.onChange(() => zone.invalidate()));
      if (this.deps.health) {
        this.#unsubscribe.push(this.deps.health.onChange(() => zone.invalidate()));
      }
      this.#client = new UpstreamClient();
      this.#cache = new AnswerCache({
        maxEntries: o.cacheEntries,
        maxBytes: o.cacheBytes,
        maxTtlMs: o.cacheMaxTtlMs,
      }, now);
      this.#forwarder = new Forwarder(
        {
          client: this.#client,
          cache: this.#cache,
          metrics: this.#metrics,
          logger: this.#log,
          now,
        },
        o,
      );
      this.#handler = new DnsHandler({
        zone,
        forwarder: this.#forwarder,
        metrics: this.#metrics,
        logger: this.#log,
      }, o.maxUdpPayload);
      const auto = !this.deps.udpListener && o.udpPath === "auto";
      try {
        await this.#listen(this.deps.udpListener ?? this.#udpFactory(), signal);
      } catch (err) {
        if (
          !auto || err instanceof DnsBindError || signal.aborted ||
          this.#udp[0]?.path === "portable"
        ) throw err;
        // E.g. a bundle without the worker module: the portable path still serves.
        this.#log.warn("batched UDP path failed to start, using the portable one", { error: err });
        await this.#closeListeners();
        await this.#listen(portableUdp, signal);
      }
    } catch (err) {
      await this.#teardown();
      this.#state = "failed";
      this.#detail = err instanceof Error ? err.message : String(err);
      throw err;
    }
    const cache = this.#cache;
    this.#metrics.cacheEntries.collect((set) => set(cache.size));
    this.#flushTimer = setInterval(() => this.#handler?.flush(), 1000);
    this.#state = "ready";
    const listeners = this.#udp.map((l) => formatHostPort(l.hostname, l.port));
    this.#detail =
      `serving ${o.domain} on ${listeners.join(", ")} (udp ${this.#udp[0].path}, tcp)` +
      `; upstreams ${o.upstreams.map((u) => u.label).join(", ") || "none"}`;
    this.#log.info("DNS listening", {
      listeners,
      udpPath: this.#udp[0].path,
      domain: o.domain,
      upstreams: o.upstreams.map((u) => u.label),
      clusterNames: this.#zone!.names,
    });
  }

  /** Binds, starts the receive loops and waits until every UDP listener receives. */
  async #listen(factory: UdpListenerFactory, signal: AbortSignal): Promise<void> {
    this.#bind(factory);
    for (const l of this.#udp) this.#loops.push(l.serve());
    for (const l of this.#tcp) this.#loops.push(l.serve());
    await withTimeout(
      Promise.all(this.#udp.map((l) => l.ready())),
      READY_TIMEOUT_MS,
      "UDP listeners not ready",
    );
    signal.throwIfAborted();
  }

  async #closeListeners(): Promise<void> {
    for (const l of [...this.#udp, ...this.#tcp]) l.close();
    await Promise.allSettled(this.#loops);
    this.#loops = [];
    this.#udp = [];
    this.#tcp = [];
  }

  /** Binds UDP then TCP on each address; with port 0 every listener shares the first free port. */
  #bind(factory: UdpListenerFactory): void {
    const o = this.options;
    const attempts = o.listenPort === 0 ? 8 : 1;
    for (let attempt = 1;; attempt++) {
      let port = o.listenPort;
      try {
        for (const hostname of o.listenAddresses) {
          const udp = factory({
            hostname,
            port,
            handler: this.#handler!,
            zone: this.#zone!,
            metrics: this.#metrics,
            logger: this.#log,
            maxUdpPayload: o.maxUdpPayload,
          });
          this.#udp.push(udp);
          port = udp.port;
          this.#tcp.push(
            new TcpListener(hostname, port, this.#handler!, this.#metrics, this.#log, {
              maxConnections: o.maxTcpConnections,
              idleTimeoutMs: o.tcpIdleTimeoutMs,
            }),
          );
        }
        return;
      } catch (err) {
        for (const l of [...this.#udp, ...this.#tcp]) l.close();
        this.#udp = [];
        this.#tcp = [];
        const retry = attempt < attempts && err instanceof DnsBindError &&
          (err.cause instanceof Deno.errors.AddrInUse ||
            (err.cause instanceof BindFailure && err.cause.errno === 98));
        if (!retry) throw err;
      }
    }
  }

  /** The UDP path per `options.udpPath`; "auto" takes the batched one when it can load. */
  #udpFactory(): UdpListenerFactory {
    const want = this.options.udpPath;
    if (want === "portable") return portableUdp;
    if (want === "batched") {
      if (!batchedPathAvailable()) {
        throw new DnsOptionsError([
          `udpPath: "batched" needs Linux on x86_64 or aarch64 and --allow-ffi (this is ${Deno.build.os}/${Deno.build.arch})`,
        ]);
      }
      return batchedUdp;
    }
    if (!batchedPathAvailable()) return portableUdp;
    return (a) => {
      try {
        return batchedUdp(a);
      } catch (err) {
        if (err instanceof DnsBindError) throw err;
        this.#log.warn("batched UDP path unavailable, using the portable one", { error: err });
        return portableUdp(a);
      }
    };
  }

  async #teardown(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    for (const l of [...this.#udp, ...this.#tcp]) l.close();
    await this.#client?.close();
    await this.#closeListeners();
    this.#handler?.flush();
  }

  stop(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "failed") {
      return this.#stopping ?? Promise.resolve();
    }
    this.#stopping ??= (async () => {
      this.#state = "stopping";
      await this.#teardown();
      this.#state = "stopped";
      this.#detail = "stopped";
    })();
    return this.#stopping;
  }

  /** "degraded" while every upstream has failed its last 3 exchanges (cluster names still work). */
  status(): ServiceStatus {
    const ups = this.#forwarder?.status() ?? [];
    if (this.#state === "ready" && ups.length > 0 && ups.every((u) => u.consecutiveFailures >= 3)) {
      return {
        state: "degraded",
        detail: `${this.#detail}; every upstream is failing (${ups[0].address}: ${
          ups[0].lastError
        })`,
      };
    }
    return { state: this.#state, detail: this.#detail };
  }

  /** Listeners, UDP path, upstream health, zone and cache sizes. */
  details(): DnsStatusDetail {
    return {
      state: this.#state,
      listeners: this.#udp.map((l) => ({
        address: formatHostPort(l.hostname, l.port),
        udp: l.path,
        tcp: true,
      })),
      udpPath: this.#udp[0]?.path ?? "none",
      upstreams: this.#forwarder?.status() ?? [],
      clusterNames: this.#zone?.names ?? 0,
      cacheEntries: this.#cache?.size ?? 0,
      tcpConnections: this.#tcp.reduce((n, l) => n + l.connections, 0),
    };
  }
}

/** Factory in the `(deps, options)` shape of HELPERS.md. */
export function createDnsServer(deps: DnsDeps, options: DnsOptions): DnsServer {
  return new DnsServer(deps, options);
}
