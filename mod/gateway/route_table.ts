/**
 * The route table: the servers of Gateways selected for this node grouped into listener
 * plans by port, and the VirtualServices bound to them. Rebuilt from the store on change;
 * requests read the current table.
 */

import type { Gateway, StoreReader } from "../kube/mod.ts";
import type { Logger } from "../log/mod.ts";
import { VirtualServiceError } from "./errors.ts";
import { hostMatches, hostsIntersect, httpMatches, type RequestFacts } from "./match.ts";
import type {
  HttpMatch,
  HttpRoute,
  L4Route,
  ServerKind,
  ServerModel,
  TlsSettings,
  VirtualServiceModel,
} from "./model.ts";
import { parseVirtualService } from "./parse_virtual_service.ts";

/** One port to listen on, and the Gateway servers sharing it. */
export interface ListenerPlan {
  port: number;
  kind: ServerKind;
  servers: ServerModel[];
}

export interface HttpRouteHit {
  vs: VirtualServiceModel;
  route: HttpRoute;
  gateway: string;
  /** The match that selected the route (undefined for a route without matches). */
  match?: HttpMatch;
}

export interface L4RouteHit {
  vs: VirtualServiceModel;
  route: L4Route;
}

export class RouteTable {
  constructor(
    readonly plans: ReadonlyMap<number, ListenerPlan>,
    readonly virtualServices: readonly VirtualServiceModel[],
    /** Human-readable problems (conflicting servers, skipped VirtualServices). */
    readonly problems: readonly string[],
  ) {}

  static empty(): RouteTable {
    return new RouteTable(new Map(), [], []);
  }

  /** Servers of the plan whose hosts match `host` (all servers for an empty host and "*"). */
  serversFor(plan: ListenerPlan, host: string): ServerModel[] {
    return plan.servers.filter((s) => s.hosts.some((h) => hostMatches(h, host)));
  }

  /** First matching HTTP route of the VirtualServices bound to this port for `host`. */
  matchHttp(
    plan: ListenerPlan,
    host: string,
    facts: Omit<RequestFacts, "gateway">,
  ): HttpRouteHit | undefined {
    const servers = this.serversFor(plan, host);
    const gateways = new Set(servers.map((s) => s.gateway));
    const candidates = this.virtualServices
      .filter((vs) => vs.http.length > 0 && vs.gateways.some((g) => gateways.has(g)))
      .map((vs) => ({ vs, rank: hostRank(vs.hosts, host) }))
      .filter((c) => c.rank >= 0)
      .sort((a, b) => b.rank - a.rank);
    for (const { vs } of candidates) {
      const gateway = vs.gateways.find((g) => gateways.has(g))!;
      for (const route of vs.http) {
        if (route.match.length === 0) return { vs, route, gateway };
        const match = route.match.find((m) => httpMatches(m, { ...facts, gateway }));
        if (match) return { vs, route, gateway, match };
      }
    }
    return undefined;
  }

  /** First tcp[] route bound to this port. */
  matchTcp(plan: ListenerPlan): L4RouteHit | undefined {
    const gateways = new Set(plan.servers.map((s) => s.gateway));
    for (const vs of this.virtualServices) {
      if (!vs.gateways.some((g) => gateways.has(g))) continue;
      for (const route of vs.tcp) {
        if (
          route.match.length === 0 || route.match.some((m) => l4Matches(m, plan.port, gateways))
        ) return { vs, route };
      }
    }
    return undefined;
  }

  /** First tls[] route whose sniHosts match `sni` on this port. */
  matchTls(plan: ListenerPlan, sni: string): L4RouteHit | undefined {
    const gateways = new Set(this.serversFor(plan, sni).map((s) => s.gateway));
    for (const vs of this.virtualServices) {
      if (!vs.gateways.some((g) => gateways.has(g))) continue;
      for (const route of vs.tls) {
        const ok = route.match.some((m) =>
          l4Matches(m, plan.port, gateways) && (m.sniHosts ?? []).some((h) => hostMatches(h, sni))
        );
        if (ok) return { vs, route };
      }
    }
    return undefined;
  }
}

function l4Matches(
  m: { port?: number; gateways?: string[] },
  port: number,
  gateways: Set<string>,
): boolean {
  if (m.port !== undefined && m.port !== port) return false;
  return !m.gateways || m.gateways.some((g) => gateways.has(g));
}

/** 2 exact, 1 wildcard (longer first, folded into the fraction), -1 no match. */
function hostRank(hosts: readonly string[], host: string): number {
  let best = -1;
  for (const h of hosts) {
    if (h === host) return 2;
    if (hostMatches(h, host)) best = Math.max(best, 1 + Math.min(h.length, 999) / 1000);
  }
  return best;
}

export interface RouteTableOptions {
  nodeLabels: () => Record<string, string>;
}

/** Builds route tables, logging each defective object once per version. */
export class RouteTableBuilder {
  #logged = new Map<string, string>();

  constructor(
    private readonly store: StoreReader,
    private readonly log: Logger,
    private readonly options: RouteTableOptions,
  ) {}

  build(): RouteTable {
    const problems: string[] = [];
    const seen = new Set<string>();
    const report = (key: string, version: string, msg: string, fields: Record<string, unknown>) => {
      problems.push(msg);
      seen.add(key);
      if (this.#logged.get(key) === version) return;
      this.#logged.set(key, version);
      this.log.error(msg, fields);
    };
    const labels = this.options.nodeLabels();
    const servers: ServerModel[] = [];
    const gateways = [...this.store.list("gateways")].sort(byAgeThenKey);
    for (const gw of gateways) {
      const sel = gw.spec?.selector ?? {};
      if (!Object.entries(sel).every(([k, v]) => labels[k] === v)) continue;
      const key = `${gw.metadata.namespace ?? "default"}/${gw.metadata.name}`;
      (gw.spec?.servers ?? []).forEach((s, i) => {
        const res = toServer(gw, key, s, i);
        if (typeof res === "string") {
          report(`gw:${key}#${i}`, gw.metadata.resourceVersion ?? JSON.stringify(gw.spec), res, {
            gateway: key,
          });
        } else servers.push(res);
      });
    }
    const plans = new Map<number, ListenerPlan>();
    for (const s of servers) {
      const plan = plans.get(s.port);
      if (!plan) plans.set(s.port, { port: s.port, kind: s.kind, servers: [s] });
      else if (plan.kind === s.kind) plan.servers.push(s);
      else {
        report(
          `port:${s.gateway}:${s.port}`,
          `${plan.kind}/${s.kind}`,
          `Gateway "${s.gateway}" server on port ${s.port} (${s.kind}) conflicts with ${plan.kind} server of "${
            plan.servers[0].gateway
          }"; ignored`,
          { gateway: s.gateway, port: s.port },
        );
      }
    }
    const selected = new Set(servers.map((s) => s.gateway));
    const vss: VirtualServiceModel[] = [];
    for (const vs of [...this.store.list("virtualservices")].sort(byAgeThenKey)) {
      const key = `${vs.metadata.namespace ?? "default"}/${vs.metadata.name}`;
      try {
        const model = parseVirtualService(vs);
        if (model.gateways.some((g) => selected.has(g))) vss.push(model);
      } catch (err) {
        if (!(err instanceof VirtualServiceError)) throw err;
        report(
          `vs:${key}`,
          vs.metadata.resourceVersion ?? JSON.stringify(vs.spec),
          `${err.message}; skipped`,
          { virtualService: key },
        );
      }
    }
    for (const k of [...this.#logged.keys()]) if (!seen.has(k)) this.#logged.delete(k);
    // A VirtualService binds only when one of its hosts meets a host of a server it names.
    const bound = vss.filter((vs) =>
      servers.some((s) =>
        vs.gateways.includes(s.gateway) &&
        vs.hosts.some((h) => s.hosts.some((sh) => hostsIntersect(h, sh)))
      )
    );
    return new RouteTable(plans, bound, problems);
  }
}

function byAgeThenKey(
  a: { metadata: { creationTimestamp?: string; namespace?: string; name: string } },
  b: typeof a,
): number {
  const ta = a.metadata.creationTimestamp ?? "";
  const tb = b.metadata.creationTimestamp ?? "";
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

type GatewayServer = NonNullable<NonNullable<Gateway["spec"]>["servers"]>[number];

const TLS_VERSIONS: Record<string, TlsSettings["minProtocolVersion"]> = {
  TLSV1_0: "TLSv1",
  TLSV1_1: "TLSv1.1",
  TLSV1_2: "TLSv1.2",
  TLSV1_3: "TLSv1.3",
};

/** A server model, or a message saying why the server is unusable. */
function toServer(gw: Gateway, key: string, s: GatewayServer, index: number): ServerModel | string {
  const where = `Gateway "${key}" servers[${index}]`;
  const port = s?.port?.number;
  if (!Number.isInteger(port) || port! < 1 || port! > 65535) {
    return `${where}: port.number must be a port number`;
  }
  const protocol = (s.port?.protocol ?? "").toUpperCase();
  const hosts = (s.hosts ?? []).map((h) =>
    (h.includes("/") ? h.slice(h.indexOf("/") + 1) : h).toLowerCase()
  );
  if (hosts.length === 0) return `${where}: hosts must list at least one host`;
  const ns = gw.metadata.namespace ?? "default";
  const mode = s.tls?.mode ?? (s.tls?.credentialName ? "SIMPLE" : undefined);
  const passthrough = mode === "PASSTHROUGH" || mode === "AUTO_PASSTHROUGH";
  if (mode === "ISTIO_MUTUAL") return `${where}: tls.mode ISTIO_MUTUAL is not supported`;
  let kind: ServerKind;
  switch (protocol) {
    case "HTTP":
    case "HTTP2":
    case "GRPC":
      // EdgeMesh's TLS example declares HTTP with a tls block: treat it as HTTPS.
      kind = s.tls?.credentialName && !passthrough ? "https" : "http";
      break;
    case "HTTPS":
      kind = passthrough ? "tls-passthrough" : "https";
      break;
    case "TLS":
      kind = passthrough ? "tls-passthrough" : "tls-terminate";
      break;
    case "TCP":
    case "MONGO":
    case "MYSQL":
    case "REDIS":
      kind = "tcp";
      break;
    default:
      return `${where}: protocol "${
        s.port?.protocol ?? ""
      }" is not supported (HTTP, HTTPS, TCP, TLS)`;
  }
  const out: ServerModel = { gateway: key, port: port!, portName: s.port?.name ?? "", kind, hosts };
  if (kind === "http" && s.tls?.httpsRedirect) out.httpsRedirect = true;
  if (kind === "https" || kind === "tls-terminate") {
    if (!s.tls?.credentialName) {
      return `${where}: tls.credentialName is required for ${protocol} ${mode ?? "SIMPLE"}`;
    }
    const cred = s.tls.credentialName;
    out.tls = {
      mode: mode === "MUTUAL" ? "MUTUAL" : "SIMPLE",
      credential: cred.includes("/") ? cred : `${ns}/${cred}`,
      minProtocolVersion: s.tls.minProtocolVersion
        ? TLS_VERSIONS[s.tls.minProtocolVersion.toUpperCase()]
        : undefined,
    };
  }
  return out;
}
