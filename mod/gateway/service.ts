/**
 * GatewayService: binds the servers of the Gateways selected for this node on the configured
 * addresses, keeps them in step with the store, and proxies HTTP(S), TCP and TLS traffic.
 */

import type { Dialer, HealthView } from "../contracts/mod.ts";
import type { ServiceCatalog, StoreReader } from "../kube/mod.ts";
import type { Service, ServiceState, ServiceStatus } from "../lifecycle/mod.ts";
import { type Logger, LogRateLimiter } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import { DestinationResolver } from "./destinations.ts";
import type { Limits, ProxyContext } from "./dispatch.ts";
import { BindError, CredentialError } from "./errors.ts";
import { serveHttp } from "./http_proxy.ts";
import { type Accepted, bindPlain, bindTls, type BoundListener } from "./listeners.ts";
import { hostMatches } from "./match.ts";
import { type GatewayMetrics, gatewayMetrics } from "./metrics.ts";
import type { ServerModel } from "./model.ts";
import { lbPickers, type PickerFactory } from "./picker.ts";
import { type ListenerPlan, RouteTable, RouteTableBuilder } from "./route_table.ts";
import { serveL4 } from "./tcp_proxy.ts";
import { CredentialStore } from "./tls_credentials.ts";
import { createConnector } from "./upstream.ts";
import { UpstreamPool } from "./upstream_pool.ts";
import type { Wire } from "./wire.ts";

/** Settings of the gateway (config `modules.edgeGateway`, resolved by main.ts). */
export interface GatewayOptions {
  /** This node's name: endpoints on it are dialled directly. */
  nodeName: string;
  /** This node's labels, matched against Gateway `selector` (the Node object's labels, when the store has it, are added). */
  nodeLabels: Record<string, string>;
  /** Addresses to bind every selected server on (from interfaces/includeIP/excludeIP). */
  bindAddresses: string[];
  /** Largest request head in bytes; larger ones get 431. Default 32768. */
  maxHeaderBytes?: number;
  /** Most header fields in a request; more get 431. Default 100. */
  maxHeaderCount?: number;
  /** Time a client has to send a whole request head once it started. Default 10000. */
  headerTimeoutMs?: number;
  /** Keep-alive idle time between requests, and longest stall of a body. Default 60000. */
  idleTimeoutMs?: number;
  /** Idle time of TCP/TLS connections and upgraded (WebSocket) ones. Default 3600000. */
  tcpIdleTimeoutMs?: number;
  /** Timeout of one upstream connect. Default 5000. */
  connectTimeoutMs?: number;
  /** How long stop() lets open connections finish before closing them. Default 5000. */
  drainTimeoutMs?: number;
  /** How long an idle upstream HTTP connection is kept for reuse (0: never). Default 15000. */
  upstreamKeepAliveMs?: number;
  /**
   * Endpoints on other nodes: try kernel TCP first and use the tunnel only when the address
   * is unreachable (edgeProxy.lanDirect). Default false: always the tunnel.
   */
  lanDirect?: boolean;
  /** Timeout of a direct attempt to another node. Default 1000. */
  lanConnectTimeoutMs?: number;
}

export interface GatewayDeps {
  logger: Logger;
  metrics: Registry;
  store: StoreReader;
  catalog: ServiceCatalog;
  dialer: Dialer;
  health: HealthView;
  /** Balancers; default: mod/lb's, chosen by the DestinationRule (`lbPickers`). */
  pickers?: PickerFactory;
  /** For weighted choices and balancers; default Math.random. */
  random?: () => number;
  /** Clock in ms (LAN verdict expiry); default Date.now. */
  now?: () => number;
}

interface Conn {
  wire: Wire;
  done: Promise<void>;
}

export class GatewayService implements Service {
  readonly name = "gateway";
  #state: ServiceState = "stopped";
  #log: Logger;
  #metrics: GatewayMetrics;
  #limits: Limits;
  #builder: RouteTableBuilder;
  #table = RouteTable.empty();
  #credentials: CredentialStore;
  #listeners = new Map<string, BoundListener>();
  #bindErrors = new Map<string, string>();
  #credentialErrors = new Map<string, string>();
  #conns = new Set<Conn>();
  #ctx?: ProxyContext;
  #abort = new AbortController();
  #drain = new AbortController();
  #unsubscribe?: () => void;
  #reconciling: Promise<void> = Promise.resolve();
  #dirty = false;
  #tlsLimiter = new LogRateLimiter(5, 10_000);
  #drainMs: number;

  constructor(private readonly deps: GatewayDeps, private readonly options: GatewayOptions) {
    this.#log = deps.logger.child("gateway");
    this.#metrics = gatewayMetrics(deps.metrics);
    this.#limits = {
      maxHeaderBytes: options.maxHeaderBytes ?? 32768,
      maxHeaderCount: options.maxHeaderCount ?? 100,
      headerTimeoutMs: options.headerTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      tcpIdleTimeoutMs: options.tcpIdleTimeoutMs ?? 3_600_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      connectTries: 3,
    };
    this.#drainMs = options.drainTimeoutMs ?? 5_000;
    this.#builder = new RouteTableBuilder(deps.store, this.#log, {
      nodeLabels: () => this.#nodeLabels(),
    });
    this.#credentials = new CredentialStore(deps.store);
  }

  #nodeLabels(): Record<string, string> {
    const node = this.deps.store.get("nodes", undefined, this.options.nodeName);
    return { ...this.options.nodeLabels, ...node?.metadata.labels };
  }

  /** The route table in use (for tests and the admin API). */
  get table(): RouteTable {
    return this.#table;
  }

  /** `address:port` of every bound listener. */
  get boundAddresses(): string[] {
    return [...this.#listeners.values()].map((l) => `${l.address}:${l.port}`);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#state !== "stopped") return;
    this.#state = "starting";
    signal.throwIfAborted();
    this.#abort = new AbortController();
    this.#drain = new AbortController();
    const { deps } = this;
    this.#ctx = {
      table: () => this.#table,
      resolver: new DestinationResolver({
        catalog: deps.catalog,
        store: deps.store,
        health: deps.health,
        pickers: deps.pickers ?? lbPickers(this.#log, deps.random),
        log: this.#log,
      }),
      connector: createConnector({
        dialer: deps.dialer,
        nodeName: this.options.nodeName,
        lanDirect: this.options.lanDirect ?? false,
        lanConnectTimeoutMs: this.options.lanConnectTimeoutMs ?? 1000,
        lanVerdictTtlMs: 60_000,
        now: deps.now ?? Date.now,
      }),
      metrics: this.#metrics,
      log: this.#log,
      limits: this.#limits,
      random: deps.random ?? Math.random,
      signal: this.#abort.signal,
      draining: this.#drain.signal,
      pool: new UpstreamPool({
        idleMs: this.options.upstreamKeepAliveMs ?? 15_000,
        maxPerEndpoint: 16,
      }),
    };
    const watched = new Set(["gateways", "virtualservices", "nodes", "secrets"]);
    this.#unsubscribe = deps.store.on("batch", ({ kinds }) => {
      if ([...kinds].some((k) => watched.has(k))) this.refresh();
    });
    this.refresh();
    await this.#reconciling;
    if (signal.aborted) {
      await this.stop();
      signal.throwIfAborted();
    }
    this.#updateState();
  }

  /** Rebuilds the route table and re-binds listeners (coalesced; called on store changes). */
  refresh(): Promise<void> {
    if (this.#dirty) return this.#reconciling;
    this.#dirty = true;
    this.#reconciling = this.#reconciling.then(async () => {
      this.#dirty = false;
      if (this.#state === "stopped" || this.#state === "stopping") return;
      this.#table = this.#builder.build();
      this.#checkCredentials();
      await this.#reconcileListeners();
      if (this.#state !== "starting") this.#updateState();
    }).catch((err) => {
      this.#log.error("gateway reconcile failed", { error: err });
    });
    return this.#reconciling;
  }

  #checkCredentials(): void {
    const servers = [...this.#table.plans.values()].flatMap((p) => p.servers).filter((s) => s.tls);
    const errors = new Map<string, string>();
    for (const s of servers) {
      const c = this.#credentials.get(s.tls!);
      if (c instanceof CredentialError) errors.set(`${s.gateway}:${s.port}`, c.message);
    }
    for (const [k, msg] of errors) {
      if (this.#credentialErrors.get(k) !== msg) {
        this.#log.error("TLS server cannot serve", { server: k, error: msg });
      }
    }
    for (const k of this.#credentialErrors.keys()) {
      if (!errors.has(k)) this.#log.info("TLS server credential usable again", { server: k });
    }
    this.#credentialErrors = errors;
    this.#credentials.retain(servers.map((s) => s.tls!));
  }

  async #reconcileListeners(): Promise<void> {
    const desired = new Map<string, { address: string; plan: ListenerPlan; signature: string }>();
    for (const plan of this.#table.plans.values()) {
      const mutual = plan.servers.some((s) => s.tls?.mode === "MUTUAL");
      const signature = `${plan.kind}|${mutual}`;
      for (const address of this.options.bindAddresses) {
        desired.set(`${address}|${plan.port}`, { address, plan, signature });
      }
    }
    for (const [key, l] of [...this.#listeners]) {
      const want = desired.get(key);
      if (want && want.signature === l.signature) continue;
      this.#listeners.delete(key);
      await l.close();
      this.#log.info("gateway listener closed", { address: `${l.address}:${l.port}` });
    }
    for (const key of [...this.#bindErrors.keys()]) {
      if (!desired.has(key)) this.#bindErrors.delete(key);
    }
    for (const [key, { address, plan, signature }] of desired) {
      if (this.#listeners.has(key)) continue;
      try {
        const l = await this.#bind(address, plan, signature);
        this.#listeners.set(key, l);
        this.#bindErrors.delete(key);
        this.#log.info("gateway listener bound", {
          address: `${address}:${plan.port}`,
          kind: plan.kind,
        });
      } catch (err) {
        if (!(err instanceof BindError)) throw err;
        if (this.#bindErrors.get(key) !== err.message) this.#log.error(err.message, { error: err });
        this.#bindErrors.set(key, err.message);
      }
    }
  }

  /** The current plan for a port (connections accepted after a change use the new one). */
  #plan(port: number): ListenerPlan | undefined {
    return this.#table.plans.get(port);
  }

  #bind(address: string, plan: ListenerPlan, signature: string): Promise<BoundListener> {
    const port = plan.port;
    const kind = plan.kind;
    if (kind === "https" || kind === "tls-terminate") {
      return bindTls(address, port, signature, signature.endsWith("|true"), {
        handshakeTimeoutMs: this.#limits.headerTimeoutMs,
        serverFor: (sni) => this.#serverForSni(port, sni),
        credential: (s) => this.#credentials.get(s.tls!),
        onConn: (a) => this.#serve(a, port),
        onTlsError: (reason, detail) => {
          this.#metrics.tlsErrors.inc({ port, reason });
          const suppressed = this.#tlsLimiter.allow(`${port}:${reason}`);
          if (suppressed !== undefined) {
            this.#log.warn("TLS connection refused", { port, reason, detail, suppressed });
          }
        },
      });
    }
    return Promise.resolve(
      bindPlain(address, port, signature, (a) => this.#serve(a, port), (err) => {
        this.#log.error("gateway listener failed", { address: `${address}:${port}`, error: err });
      }),
    );
  }

  #serverForSni(port: number, sni: string): ServerModel | undefined {
    const plan = this.#plan(port);
    if (!plan) return undefined;
    if (!sni) return plan.servers[0];
    return plan.servers.find((s) => s.hosts.some((h) => hostMatches(h, sni))) ??
      plan.servers.find((s) => s.hosts.includes("*"));
  }

  #serve(a: Accepted, port: number): void {
    const plan = this.#plan(port);
    const ctx = this.#ctx;
    if (!plan || !ctx || this.#drain.signal.aborted) {
      a.wire.close();
      return;
    }
    this.#metrics.connections.inc({ port, kind: plan.kind });
    let work: Promise<void>;
    switch (plan.kind) {
      case "http":
        work = serveHttp(a.wire, { remoteIp: a.remoteIp, plan, scheme: "http" }, ctx);
        break;
      case "https":
        work = serveHttp(a.wire, { remoteIp: a.remoteIp, plan, scheme: "https" }, ctx);
        break;
      default:
        work = serveL4(a.wire, {
          remoteIp: a.remoteIp,
          plan,
          bySni: plan.kind === "tls-passthrough",
        }, ctx);
    }
    const conn: Conn = { wire: a.wire, done: work };
    this.#conns.add(conn);
    work.finally(() => this.#conns.delete(conn));
  }

  #updateState(): void {
    if (this.#state === "stopped" || this.#state === "stopping") return;
    const problems = this.#problems();
    this.#state = problems.length ? "degraded" : "ready";
  }

  #problems(): string[] {
    const out = [
      ...this.#bindErrors.values(),
      ...this.#credentialErrors.values(),
      ...this.#table.problems,
    ];
    if (this.#table.plans.size > 0 && this.options.bindAddresses.length === 0) {
      out.push("Gateway servers are selected for this node but no bind address is configured");
    }
    return out;
  }

  status(): ServiceStatus {
    if (this.#state === "stopped" || this.#state === "starting" || this.#state === "stopping") {
      return { state: this.#state, detail: this.#state };
    }
    const bound = [...this.#listeners.values()].map((l) => `${l.address}:${l.port}`);
    const kinds = [...this.#table.plans.values()].map((p) => `${p.port}/${p.kind}`);
    const serving = bound.length
      ? `serving ${
        kinds.join(", ")
      } on ${bound.length} listener(s); ${this.#table.virtualServices.length} VirtualService(s) bound`
      : "no Gateway server selected for this node";
    const problems = this.#problems();
    return {
      state: problems.length ? "degraded" : "ready",
      detail: problems.length ? `${serving}; problems: ${problems.join("; ")}` : serving,
    };
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "stopping") {
      await this.#reconciling;
      return;
    }
    this.#state = "stopping";
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await this.#reconciling;
    for (const l of this.#listeners.values()) await l.close();
    this.#listeners.clear();
    this.#drain.abort();
    // Let open connections finish, then close what is left.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#conns].map((c) => c.done)),
      new Promise<void>((resolve) => timer = setTimeout(resolve, this.#drainMs)),
    ]);
    clearTimeout(timer);
    this.#abort.abort();
    for (const c of this.#conns) c.wire.close();
    await Promise.allSettled([...this.#conns].map((c) => c.done));
    this.#ctx?.pool.close();
    this.#conns.clear();
    this.#bindErrors.clear();
    this.#credentialErrors.clear();
    this.#table = RouteTable.empty();
    this.#state = "stopped";
  }
}
