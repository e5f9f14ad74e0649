/** DNS options (mirroring `modules.edgeDNS` of CONTRACTS.md), their defaults and validation. */

import { DnsOptionsError } from "./errors.ts";

export interface DnsOptions {
  /** Addresses to listen on (UDP and TCP on each). Required, at least one. */
  listenAddresses: string[];
  /** Port for every listen address; 0 picks a free port (tests), shared by UDP and TCP. */
  listenPort: number;
  /** Cluster domain, e.g. "cluster.local". */
  clusterDomain: string;
  /** TTL of cluster answers (rounded down to seconds). */
  ttlMs: number;
  /** Upstream servers, "ip" (port 53) or "ip:port" / "[ipv6]:port"; may be empty (SERVFAIL). */
  upstreamServers: string[];
  /** Forwarder cache size in entries; default 10000; 0 disables caching. */
  cacheEntries?: number;
  /** Forwarder cache size in bytes of stored answers; default 8 MiB. */
  cacheBytes?: number;
  /** Longest time an upstream answer (positive or negative) stays cached; default 30 s. */
  cacheMaxTtlMs?: number;
  /** Total time budget for a forwarded query over all upstreams; default 2000 ms. */
  upstreamTimeoutMs?: number;
  /** Time budget of one attempt against one upstream; default 800 ms. */
  upstreamAttemptTimeoutMs?: number;
  /** Largest UDP answer we send (and advertise in OPT) when the client asks for more; default 1232. */
  maxUdpPayload?: number;
  /** Most simultaneous TCP connections per listener; default 256. */
  maxTcpConnections?: number;
  /** A TCP connection without a query for this long is closed; default 10 s. */
  tcpIdleTimeoutMs?: number;
  /** Most forwarded queries in flight at once; beyond that, SERVFAIL; default 1024. */
  maxInflightForwards?: number;
  /**
   * How UDP is received: "batched" (recvmmsg/sendmmsg in a worker via FFI; Linux x86_64 or
   * aarch64 with --allow-ffi), "portable" (`Deno.listenDatagram`), or "auto" (default:
   * batched when available, else portable). Status and logs say which one runs.
   */
  udpPath?: "auto" | "portable" | "batched";
}

export interface Upstream {
  hostname: string;
  port: number;
  /** As written in status and metrics: "ip:port". */
  label: string;
}

export interface ResolvedDnsOptions extends Required<DnsOptions> {
  upstreams: Upstream[];
  /** Lower-case domain without trailing dot. */
  domain: string;
  ttlSeconds: number;
}

export const DNS_DEFAULTS = {
  cacheEntries: 10_000,
  cacheBytes: 8 * 1024 * 1024,
  cacheMaxTtlMs: 30_000,
  upstreamTimeoutMs: 2_000,
  upstreamAttemptTimeoutMs: 800,
  maxUdpPayload: 1232,
  maxTcpConnections: 256,
  tcpIdleTimeoutMs: 10_000,
  maxInflightForwards: 1024,
  udpPath: "auto",
} as const;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

export function isIPv6(s: string): boolean {
  if (!s.includes(":") || !/^[0-9a-fA-F:.]+$/.test(s)) return false;
  return expandIPv6(s) !== undefined;
}

/** Eight 16-bit groups of an IPv6 address, or undefined when malformed. */
export function expandIPv6(s: string): number[] | undefined {
  let tail: number[] = [];
  let text = s;
  const lastColon = s.lastIndexOf(":");
  const v4 = s.slice(lastColon + 1);
  if (v4.includes(".")) {
    if (!isIPv4(v4)) return undefined;
    const b = v4.split(".").map(Number);
    tail = [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
    text = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (h: string) => (h === "" ? [] : h.split(":"));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  for (const g of [...head, ...rest]) if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
  let groups: number[];
  const nums = (a: string[]) => a.map((g) => parseInt(g, 16));
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return undefined;
    groups = [...nums(head), ...new Array(missing).fill(0), ...nums(rest)];
  } else {
    groups = nums(head);
  }
  if (tail.length) groups.splice(groups.length - 2, 2, ...tail);
  return groups.length === 8 ? groups : undefined;
}

/** Parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port". */
export function parseUpstream(text: string): Upstream | undefined {
  let host = text.trim();
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracket) {
    host = bracket[1];
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (!isIPv6(host)) {
    const m = /^([^:]+):(\d+)$/.exec(host);
    if (m) {
      host = m[1];
      port = Number(m[2]);
    }
  }
  if (!(isIPv4(host) || isIPv6(host)) || !Number.isInteger(port) || port < 1 || port > 65535) {
    return undefined;
  }
  return {
    hostname: host,
    port,
    label: host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`,
  };
}

/** Validates options and fills defaults; throws DnsOptionsError listing every problem. */
export function resolveDnsOptions(options: DnsOptions): ResolvedDnsOptions {
  const problems: string[] = [];
  const o = { ...DNS_DEFAULTS, ...stripUndefined(options) } as Required<DnsOptions>;
  if (!Array.isArray(o.listenAddresses) || o.listenAddresses.length === 0) {
    problems.push("listenAddresses: at least one address is required");
  } else {
    o.listenAddresses.forEach((a, i) => {
      if (!(isIPv4(a) || isIPv6(a))) {
        problems.push(`listenAddresses[${i}]: "${a}" is not an IP address`);
      }
    });
  }
  if (!Number.isInteger(o.listenPort) || o.listenPort < 0 || o.listenPort > 65535) {
    problems.push(`listenPort: ${o.listenPort} is not a port number (0-65535)`);
  }
  const domain = String(o.clusterDomain ?? "").toLowerCase().replace(/^\.+|\.+$/g, "");
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(domain)) {
    problems.push(`clusterDomain: "${o.clusterDomain}" is not a domain name`);
  }
  if (!(o.ttlMs >= 0) || o.ttlMs > 0x7fffffff * 1000) {
    problems.push(`ttlMs: ${o.ttlMs} is out of range`);
  }
  const upstreams: Upstream[] = [];
  (o.upstreamServers ?? []).forEach((u, i) => {
    const p = parseUpstream(u);
    if (p) upstreams.push(p);
    else problems.push(`upstreamServers[${i}]: "${u}" is not "ip" or "ip:port"`);
  });
  const positive = [
    "upstreamTimeoutMs",
    "upstreamAttemptTimeoutMs",
    "maxTcpConnections",
    "tcpIdleTimeoutMs",
    "maxInflightForwards",
  ] as const;
  for (const k of positive) if (!(o[k] > 0)) problems.push(`${k}: ${o[k]} must be > 0`);
  for (const k of ["cacheEntries", "cacheBytes", "cacheMaxTtlMs"] as const) {
    if (!(o[k] >= 0)) problems.push(`${k}: ${o[k]} must be >= 0`);
  }
  if (!["auto", "portable", "batched"].includes(o.udpPath)) {
    problems.push(`udpPath: "${o.udpPath}" is not "auto", "portable" or "batched"`);
  }
  if (!(o.maxUdpPayload >= 512 && o.maxUdpPayload <= 65535)) {
    problems.push(`maxUdpPayload: ${o.maxUdpPayload} must be within 512-65535`);
  }
  if (problems.length) throw new DnsOptionsError(problems);
  return Object.freeze({
    ...o,
    listenAddresses: [...o.listenAddresses],
    upstreamServers: [...o.upstreamServers],
    upstreams,
    domain,
    ttlSeconds: Math.floor(o.ttlMs / 1000),
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * The `nameserver` entries of a resolv.conf text, minus our own listen addresses (the
 * default upstreams of CONTRACTS.md). The caller reads the file; this only parses.
 */
export function upstreamsFromResolvConf(text: string, ownAddresses: readonly string[]): string[] {
  const own = new Set(ownAddresses.map((a) => a.toLowerCase()));
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const ip = m[1].replace(/%.*$/, "");
    if ((isIPv4(ip) || isIPv6(ip)) && !own.has(ip.toLowerCase()) && !out.includes(ip)) out.push(ip);
  }
  return out;
}
