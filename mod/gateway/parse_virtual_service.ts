/** Validates a VirtualService into the routing model; any defect throws VirtualServiceError. */

import type { VirtualService } from "../kube/mod.ts";
import { VirtualServiceError } from "./errors.ts";
import type {
  Destination,
  HeaderOps,
  HttpMatch,
  HttpRoute,
  L4Match,
  L4Route,
  StringMatch,
  VirtualServiceModel,
  WeightedDestination,
} from "./model.ts";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Istio duration ("1.5s", "100ms", "2m", "1h") in milliseconds, or undefined when malformed. */
export function parseDurationMs(v: unknown): number | undefined {
  if (typeof v !== "string") return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Math.round(n * unit);
}

/** Splits a destination host ("svc", "svc.ns", "svc.ns.svc.cluster.local") into ns and name. */
export function resolveServiceHost(
  host: string,
  defaultNamespace: string,
): { namespace: string; name: string } {
  const parts = host.toLowerCase().replace(/\.$/, "").split(".");
  if (parts.length === 1) return { namespace: defaultNamespace, name: parts[0] };
  return { namespace: parts[1], name: parts[0] };
}

/** `ns/name` for a gateway reference as written in a VirtualService or a match. */
export function gatewayRef(ref: string, defaultNamespace: string): string {
  const slash = ref.indexOf("/");
  if (slash >= 0) return ref;
  // "name.ns.svc.cluster.local" form is also accepted by Istio.
  const dot = ref.indexOf(".");
  if (dot > 0) return `${ref.slice(dot + 1).split(".")[0]}/${ref.slice(0, dot)}`;
  return `${defaultNamespace}/${ref}`;
}

export function parseVirtualService(vs: VirtualService): VirtualServiceModel {
  const namespace = vs.metadata.namespace ?? "default";
  const key = `${namespace}/${vs.metadata.name}`;
  const fail = (field: string, msg: string): never => {
    throw new VirtualServiceError(key, field, msg);
  };
  const spec: unknown = vs.spec;
  if (!isObj(spec)) return fail("spec", "missing");
  const hosts = stringList(spec.hosts, "spec.hosts", fail);
  if (hosts.length === 0) fail("spec.hosts", "must list at least one host");
  const gateways = stringList(spec.gateways, "spec.gateways", fail)
    .filter((g) => g !== "mesh")
    .map((g) => gatewayRef(g, namespace));
  const ctx: Ctx = { namespace, key, fail };
  const http = listOf(spec.http, "spec.http", fail).map((r, i) =>
    parseHttpRoute(r, `spec.http[${i}]`, i, ctx)
  );
  const tcp = listOf(spec.tcp, "spec.tcp", fail).map((r, i) =>
    parseL4Route(r, `spec.tcp[${i}]`, i, ctx, false)
  );
  const tls = listOf(spec.tls, "spec.tls", fail).map((r, i) =>
    parseL4Route(r, `spec.tls[${i}]`, i, ctx, true)
  );
  return { key, namespace, hosts: hosts.map((h) => h.toLowerCase()), gateways, http, tcp, tls };
}

type Fail = (field: string, msg: string) => never;
interface Ctx {
  namespace: string;
  key: string;
  fail: Fail;
}

function listOf(v: unknown, field: string, fail: Fail): Obj[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail(field, "must be a list");
  return v.map((x, i) => isObj(x) ? x : fail(`${field}[${i}]`, "must be an object"));
}

function stringList(v: unknown, field: string, fail: Fail): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail(field, "must be a list of strings");
  return v.map((x, i) =>
    typeof x === "string" && x !== "" ? x : fail(`${field}[${i}]`, "must be a non-empty string")
  );
}

function parseStringMatch(v: unknown, field: string, fail: Fail): StringMatch {
  if (!isObj(v)) return fail(field, "must be an object with exact, prefix or regex");
  const keys = Object.keys(v).filter((k) => v[k] !== undefined && v[k] !== null);
  if (keys.length !== 1) {
    return fail(
      field,
      `needs exactly one of exact, prefix, regex (got ${keys.join(",") || "none"})`,
    );
  }
  const k = keys[0];
  const value = v[k];
  if (typeof value !== "string") return fail(`${field}.${k}`, "must be a string");
  if (k === "exact" || k === "prefix") return { kind: k, value };
  if (k === "regex") {
    try {
      return { kind: "regex", value: new RegExp(`^(?:${value})$`) };
    } catch (err) {
      return fail(
        `${field}.regex`,
        `bad regular expression ${JSON.stringify(value)}: ${(err as Error).message}`,
      );
    }
  }
  return fail(`${field}.${k}`, "unknown match type (want exact, prefix or regex)");
}

function parseMatchMap(
  v: unknown,
  field: string,
  fail: Fail,
  lower: boolean,
): [string, StringMatch][] {
  if (v === undefined || v === null) return [];
  if (!isObj(v)) return fail(field, "must be a map");
  return Object.entries(v).map((
    [k, m],
  ) => [lower ? k.toLowerCase() : k, parseStringMatch(m, `${field}.${k}`, fail)]);
}

function parsePort(v: unknown, field: string, fail: Fail): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) {
    return fail(field, "must be a port number");
  }
  return v as number;
}

function parseHttpMatch(m: Obj, field: string, ctx: Ctx): HttpMatch {
  const { fail } = ctx;
  const out: HttpMatch = {
    headers: parseMatchMap(m.headers, `${field}.headers`, fail, true),
    queryParams: parseMatchMap(m.queryParams, `${field}.queryParams`, fail, false),
    port: parsePort(m.port, `${field}.port`, fail),
  };
  if (m.uri !== undefined) out.uri = parseStringMatch(m.uri, `${field}.uri`, fail);
  if (m.method !== undefined) out.method = parseStringMatch(m.method, `${field}.method`, fail);
  if (m.authority !== undefined) {
    out.authority = parseStringMatch(m.authority, `${field}.authority`, fail);
  }
  if (m.gateways !== undefined) {
    out.gateways = stringList(m.gateways, `${field}.gateways`, fail).map((g) =>
      gatewayRef(g, ctx.namespace)
    );
  }
  return out;
}

function parseHeaderOps(v: unknown, field: string, fail: Fail): HeaderOps | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) return fail(field, "must be an object with set, add, remove");
  const pairs = (x: unknown, f: string): [string, string][] => {
    if (x === undefined || x === null) return [];
    if (!isObj(x)) return fail(f, "must be a map of strings");
    return Object.entries(x).map(([k, val]) =>
      typeof val === "string" ? [k, val] : fail(`${f}.${k}`, "must be a string")
    );
  };
  return {
    set: pairs(v.set, `${field}.set`),
    add: pairs(v.add, `${field}.add`),
    remove: stringList(v.remove, `${field}.remove`, fail),
  };
}

function parseDestination(v: unknown, field: string, ctx: Ctx): Destination {
  const { fail } = ctx;
  if (!isObj(v)) return fail(field, "missing");
  if (typeof v.host !== "string" || v.host === "") {
    return fail(`${field}.host`, "must be a service name");
  }
  const { namespace, name } = resolveServiceHost(v.host, ctx.namespace);
  let port: number | undefined;
  if (v.port !== undefined && v.port !== null) {
    if (!isObj(v.port)) return fail(`${field}.port`, "must be an object with number");
    port = parsePort(v.port.number, `${field}.port.number`, fail);
  }
  if (v.subset !== undefined && typeof v.subset !== "string") {
    return fail(`${field}.subset`, "must be a string");
  }
  return { namespace, service: name, port, subset: v.subset as string | undefined };
}

function parseWeighted(
  v: unknown,
  field: string,
  ctx: Ctx,
  withHeaders: boolean,
): WeightedDestination[] {
  const { fail } = ctx;
  const list = listOf(v, field, fail);
  if (list.length === 0) return [];
  const out = list.map((r, i): WeightedDestination => {
    const f = `${field}[${i}]`;
    const w = r.weight;
    if (w !== undefined && w !== null && (!Number.isInteger(w) || (w as number) < 0)) {
      fail(`${f}.weight`, "must be a non-negative integer");
    }
    const d: WeightedDestination = {
      destination: parseDestination(r.destination, `${f}.destination`, ctx),
      weight: (w as number | undefined) ?? -1,
    };
    if (withHeaders && isObj(r.headers)) {
      d.headers = parseHeaderOps(r.headers.request, `${f}.headers.request`, fail);
    }
    return d;
  });
  const given = out.filter((d) => d.weight >= 0);
  if (given.length === 0) { for (const d of out) d.weight = 1; }
  else for (const d of out) if (d.weight < 0) d.weight = out.length === 1 ? 100 : 0;
  if (out.every((d) => d.weight === 0)) fail(field, "weights sum to zero");
  return out;
}

function parseHttpRoute(r: Obj, field: string, index: number, ctx: Ctx): HttpRoute {
  const { fail } = ctx;
  const name = typeof r.name === "string" && r.name ? r.name : `${ctx.key}#${index}`;
  const match = listOf(r.match, `${field}.match`, fail).map((m, i) =>
    parseHttpMatch(m, `${field}.match[${i}]`, ctx)
  );
  const route = parseWeighted(r.route, `${field}.route`, ctx, true);
  const out: HttpRoute = { name, match, route };
  if (isObj(r.directResponse) && Number.isInteger(r.directResponse.status)) {
    out.directStatus = r.directResponse.status as number;
  }
  if (route.length === 0 && out.directStatus === undefined) {
    fail(`${field}.route`, "needs at least one destination");
  }
  if (r.rewrite !== undefined) {
    if (!isObj(r.rewrite)) fail(`${field}.rewrite`, "must be an object");
    const uri = (r.rewrite as Obj).uri;
    if (uri !== undefined && typeof uri !== "string") {
      fail(`${field}.rewrite.uri`, "must be a string");
    }
    out.rewriteUri = uri as string | undefined;
  }
  if (r.timeout !== undefined) {
    out.timeoutMs = parseDurationMs(r.timeout) ??
      fail(`${field}.timeout`, `bad duration ${JSON.stringify(r.timeout)}`);
  }
  if (r.retries !== undefined) {
    if (!isObj(r.retries)) return fail(`${field}.retries`, "must be an object");
    const a = r.retries.attempts;
    if (!Number.isInteger(a) || (a as number) < 0) {
      fail(`${field}.retries.attempts`, "must be a non-negative integer");
    }
    const per = r.retries.perTryTimeout === undefined
      ? undefined
      : parseDurationMs(r.retries.perTryTimeout) ??
        fail(`${field}.retries.perTryTimeout`, "bad duration");
    out.retries = { attempts: a as number, perTryTimeoutMs: per };
  }
  if (r.headers !== undefined) {
    if (!isObj(r.headers)) {
      return fail(`${field}.headers`, "must be an object with request, response");
    }
    out.requestHeaders = parseHeaderOps(r.headers.request, `${field}.headers.request`, fail);
    out.responseHeaders = parseHeaderOps(r.headers.response, `${field}.headers.response`, fail);
  }
  return out;
}

function parseL4Route(r: Obj, field: string, index: number, ctx: Ctx, tls: boolean): L4Route {
  const { fail } = ctx;
  const match = listOf(r.match, `${field}.match`, fail).map((m, i): L4Match => {
    const f = `${field}.match[${i}]`;
    const out: L4Match = { port: parsePort(m.port, `${f}.port`, fail) };
    if (m.gateways !== undefined) {
      out.gateways = stringList(m.gateways, `${f}.gateways`, fail).map((g) =>
        gatewayRef(g, ctx.namespace)
      );
    }
    if (tls) {
      const sni = stringList(m.sniHosts, `${f}.sniHosts`, fail);
      if (sni.length === 0) fail(`${f}.sniHosts`, "must list at least one host");
      out.sniHosts = sni.map((h) => h.toLowerCase());
    }
    return out;
  });
  if (tls && match.length === 0) fail(`${field}.match`, "tls routes need a match with sniHosts");
  const route = parseWeighted(r.route, `${field}.route`, ctx, false);
  if (route.length === 0) fail(`${field}.route`, "needs at least one destination");
  const name = typeof r.name === "string" && r.name
    ? r.name
    : `${ctx.key}#${tls ? "tls" : "tcp"}${index}`;
  return { name, match, route };
}
