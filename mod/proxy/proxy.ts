/**
 * The service proxy: keeps one listener per proxied service port in step with the service
 * catalog, DestinationRules and health verdicts, and (with `intercept`) the iptables rules
 * that send ClusterIP:port and NodePorts to those listeners.
 */

import type { Dialer, HealthView } from "../contracts/mod.ts";
import { endpointServed } from "../contracts/mod.ts";
import { nodeCloudNotReady, type ServiceCatalog, type StoreReader } from "../kube/mod.ts";
import {
  createBalancer,
  InvalidDestinationRuleError,
  type LbPolicy,
  parseDestinationRule,
  type ParsedRule,
  policyForPort,
  policyKey,
} from "../lb/mod.ts";
import type { ServiceState, ServiceStatus } from "../lifecycle/mod.ts";
import type { Service } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import { Connector } from "./connector.ts";
import { ProxyContext } from "./context.ts";
import { ListenError } from "./errors.ts";
import { type CommandRunner, commandRunner, type InterceptRule, Proxier } from "./iptables.ts";
import { ProxyMetrics } from "./metrics.ts";
import { type ProxyOptions, resolveProxyOptions } from "./options.ts";
import { PortState } from "./port_state.ts";
import { buildServiceTable, type ProxyEndpoint, type ProxyPort } from "./service_table.ts";
import { type ServiceStatusRow, statusRows } from "./status.ts";
import { TcpPortListener } from "./tcp_port.ts";
import { UdpPortListener } from "./udp_port.ts";

export interface ProxyDeps {
  logger: Logger;
  metrics: Registry;
  catalog: ServiceCatalog;
  /** DestinationRules and Nodes (cloud Ready condition for the serving rule). */
  store: StoreReader;
  dialer: Dialer;
  health: HealthView;
  /** Milliseconds; default `Date.now`. */
  now?: () => number;
  /** Uniform in [0, 1); default `Math.random`. */
  random?: () => number;
  /** Runs iptables commands; default runs them directly. */
  iptables?: CommandRunner;
}

type Listener = TcpPortListener | UdpPortListener;

export class ServiceProxy implements Service {
  readonly name = "edgeProxy";
  readonly options: ProxyOptions;
  #state: ServiceState = "stopped";
  #detail = "not started";
  #log: Logger;
  #now: () => number;
  #ctx: ProxyContext;
  #metrics: ProxyMetrics;
  #connector: Connector;
  #proxier?: Proxier;
  #ports = new Map<string, { state: PortState; listener: Listener; listener6?: Listener }>();
  #rules = new Map<string, { version: string; rule?: ParsedRule }>();
  #rejected = new Set<string>();
  #unsubscribe: (() => void)[] = [];
  #timer?: ReturnType<typeof setInterval>;
  #debounce?: ReturnType<typeof setTimeout>;
  #syncing: Promise<void> = Promise.resolve();
  /** The next sync re-applies iptables rules even when unchanged. */
  #forceRules = true;
  #stopping?: Promise<void>;

  constructor(
    private readonly deps: ProxyDeps,
    options: Partial<ProxyOptions> & { nodeName: string },
  ) {
    this.options = resolveProxyOptions(options);
    this.#log = deps.logger.child("proxy");
    this.#now = deps.now ?? Date.now;
    this.#connector = new Connector({ dialer: deps.dialer, now: this.#now }, this.options);
    this.#metrics = new ProxyMetrics(deps.metrics);
    this.#ctx = this.#newContext();
  }

  #newContext(): ProxyContext {
    return new ProxyContext(this.#log, this.#metrics, this.#connector, this.options, this.#now);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#state !== "stopped") return;
    this.#state = "starting";
    signal.throwIfAborted();
    this.#ctx = this.#newContext(); // a fresh shutdown signal after an earlier stop()
    try {
      if (this.options.intercept) {
        this.#proxier = new Proxier({
          runner: this.deps.iptables ?? commandRunner(),
          logger: this.#log,
          ipv6: !!this.options.listenAddressV6,
        });
        await this.#proxier.start();
      }
      await this.#sync(true);
    } catch (err) {
      this.#state = "failed";
      this.#detail = err instanceof Error ? err.message : String(err);
      await this.#teardown();
      throw err;
    }
    const schedule = () => this.#schedule();
    this.#unsubscribe.push(
      this.deps.catalog.onChange(schedule),
      this.deps.store.on("destinationrules:update", schedule),
      this.deps.store.on("nodes:update", schedule),
      this.deps.health.onChange(schedule),
    );
    this.#timer = setInterval(() => this.#schedule(true), this.options.syncIntervalMs);
    this.#state = "ready";
  }

  stop(): Promise<void> {
    if (this.#state === "stopped") return Promise.resolve();
    this.#stopping ??= (async () => {
      this.#state = "stopping";
      await this.#teardown();
      this.#state = "stopped";
      this.#detail = "stopped";
      this.#stopping = undefined;
    })();
    return this.#stopping;
  }

  async #teardown(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    await this.#syncing;
    if (this.#proxier) {
      try {
        await this.#proxier.stop();
      } catch (err) {
        this.#log.error("cannot remove iptables rules", { error: err });
      }
    }
    await Promise.all(
      [...this.#ports.values()].flatMap((p) => [p.listener.close(), p.listener6?.close()]),
    );
    this.#ports.clear();
    await this.#ctx.drain(this.options.drainTimeoutMs);
  }

  status(): ServiceStatus {
    return { state: this.#state, detail: this.#detail };
  }

  /** The listener address of a service port (for tests, SOCKS5 and status). */
  listenerFor(
    namespace: string,
    name: string,
    port: number,
    protocol: "tcp" | "udp" = "tcp",
    family: 4 | 6 = 4,
  ): { hostname: string; port: number } | undefined {
    const p = this.#ports.get(`${namespace}/${name}:${port}/${protocol}`);
    if (!p) return undefined;
    if (family === 6) {
      return p.listener6 && { hostname: this.options.listenAddressV6!, port: p.listener6.port };
    }
    return { hostname: this.options.listenAddress, port: p.listener.port };
  }

  /** Services and endpoints with their state, for `/api/v1/status`. */
  services(): ServiceStatusRow[] {
    return statusRows(this.#ports.values(), this.options, this.#connector);
  }

  /** Re-syncs now (also runs on every change and periodically). */
  resync(): Promise<void> {
    this.#forceRules = true;
    return this.#sync(false);
  }

  #schedule(periodic = false): void {
    this.#forceRules ||= periodic;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#sync(false).catch((err) => {
        this.#state = "degraded";
        this.#detail = err instanceof Error ? err.message : String(err);
        this.#log.error("proxy sync failed", { error: err });
      });
    }, 50);
  }

  #sync(first: boolean): Promise<void> {
    const run = this.#syncing.then(() => this.#syncOnce(first));
    this.#syncing = run.catch(() => undefined);
    return run;
  }

  async #syncOnce(first: boolean): Promise<void> {
    if (!first && this.#state !== "ready" && this.#state !== "degraded") return;
    const table = buildServiceTable(this.deps.catalog, {
      filterMode: this.options.serviceFilterMode,
      served: (ep) =>
        endpointServed(ep, this.deps.health, (n) => nodeCloudNotReady(this.deps.store, n)),
      onRejected: (key, reason) => {
        if (this.#rejected.has(key)) return;
        this.#rejected.add(key);
        this.#log.warn("service port not proxied", { port: key, reason });
      },
    });
    const seen = new Set<string>();
    let failed = 0;
    for (const entry of table) {
      seen.add(entry.key);
      const policy = this.#policyFor(entry);
      const pk = `${policyKey(policy)}|${entry.clientIpAffinityMs ?? 0}`;
      const existing = this.#ports.get(entry.key);
      if (existing) {
        const b = existing.state.policyKey === pk
          ? existing.state.balancer
          : this.#balancer(policy, entry);
        existing.state.update(entry, b, pk);
        continue;
      }
      const state = new PortState(entry, this.#balancer(policy, entry), pk, {
        connector: this.#connector,
        now: this.#now,
        nodeName: this.options.nodeName,
      });
      const open = (address: string) =>
        entry.protocol === "udp"
          ? UdpPortListener.open(address, state, this.#ctx)
          : TcpPortListener.open(address, state, this.#ctx);
      const v6 = this.options.listenAddressV6;
      let address = this.options.listenAddress;
      try {
        const listener = open(address);
        let listener6: Listener | undefined;
        if (v6 && (entry.nodePort || entry.clusterIPs.some((ip) => ip.includes(":")))) {
          address = v6;
          try {
            listener6 = open(v6);
          } catch (err) {
            await listener.close();
            throw err;
          }
        }
        this.#ports.set(entry.key, { state, listener, listener6 });
        this.#log.debug("listening", {
          port: entry.key,
          listen: `${this.options.listenAddress}:${listener.port}`,
          listen6: listener6 && `[${v6}]:${listener6.port}`,
        });
      } catch (err) {
        const e = new ListenError(`${address}:0`, entry.key, { cause: err });
        if (first) throw e;
        failed++;
        this.#log.error("cannot open proxy listener", { error: e });
      }
    }
    for (const [key, p] of [...this.#ports]) {
      if (seen.has(key)) continue;
      this.#ports.delete(key);
      await p.listener.close();
      await p.listener6?.close();
    }
    for (const key of [...this.#rules.keys()]) {
      if (!table.some((e) => `${e.namespace}/${e.name}` === key)) this.#rules.delete(key);
    }
    if (this.#proxier) {
      const force = this.#forceRules;
      this.#forceRules = false;
      await this.#proxier.sync(this.#interceptRules(), force);
    }
    const endpoints = table.reduce((n, e) => n + e.endpoints.filter((x) => x.served).length, 0);
    this.#detail = `${this.#ports.size} service ports, ${endpoints} served endpoints` +
      (failed ? `, ${failed} listeners failed` : "");
    if (!first) this.#state = failed ? "degraded" : "ready";
  }

  #interceptRules(): InterceptRule[] {
    return [...this.#ports.values()].map(({ state, listener, listener6 }) => ({
      comment: state.entry.key,
      clusterIPs: state.entry.clusterIPs,
      port: state.entry.port,
      protocol: state.entry.protocol,
      nodePort: state.entry.nodePort,
      listenAddress: this.options.listenAddress,
      listenPort: listener.port,
      listen6: listener6 && { address: this.options.listenAddressV6!, port: listener6.port },
      hasEndpoints: state.hasEndpoints(),
    }));
  }

  #balancer(policy: LbPolicy, entry: ProxyPort) {
    return createBalancer<ProxyEndpoint>(policy, { random: this.deps.random, now: this.#now }, {
      ring: this.options.consistentHash,
      clientIpAffinityMs: entry.clientIpAffinityMs,
    });
  }

  /** The DestinationRule of the same name and namespace; a malformed one is logged once and ignored. */
  #policyFor(entry: ProxyPort): LbPolicy {
    const key = `${entry.namespace}/${entry.name}`;
    const dr = this.deps.store.get("destinationrules", entry.namespace, entry.name);
    if (!dr) {
      this.#rules.delete(key);
      return policyForPort(undefined, entry.port);
    }
    const version = dr.metadata.resourceVersion ?? JSON.stringify(dr.spec ?? null);
    let cached = this.#rules.get(key);
    if (!cached || cached.version !== version) {
      cached = { version };
      try {
        cached.rule = parseDestinationRule(dr);
      } catch (err) {
        if (!(err instanceof InvalidDestinationRuleError)) throw err;
        this.#log.warn("ignoring malformed DestinationRule", { rule: key, problems: err.problems });
      }
      this.#rules.set(key, cached);
    }
    return policyForPort(cached.rule, entry.port);
  }
}
