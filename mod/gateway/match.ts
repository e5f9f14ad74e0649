/** Host patterns and Istio string matches. */

import type { HttpMatch, StringMatch } from "./model.ts";

/** Lower-cases and strips the port and a trailing dot from a Host/authority/SNI value. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end > 0 ? h.slice(1, end) : h;
  }
  const colon = h.lastIndexOf(":");
  if (colon >= 0 && h.indexOf(":") === colon) h = h.slice(0, colon);
  return h.endsWith(".") ? h.slice(0, -1) : h;
}

/** True when `host` (normalized) matches `pattern`: "*", "*.example.com" or exact. */
export function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  if (p === "*") return true;
  if (p.startsWith("*.")) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  if (p.startsWith("*")) return host.endsWith(p.slice(1));
  return p === host;
}

/** True when two host patterns can match a common host (used to bind VirtualServices). */
export function hostsIntersect(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === "*" || y === "*") return true;
  const wx = x.startsWith("*");
  const wy = y.startsWith("*");
  if (!wx && !wy) return x === y;
  if (wx && !wy) return y.endsWith(x.slice(1));
  if (!wx && wy) return x.endsWith(y.slice(1));
  return x.endsWith(y.slice(1)) || y.endsWith(x.slice(1));
}

export function stringMatches(m: StringMatch, value: string | undefined): boolean {
  if (value === undefined) return false;
  switch (m.kind) {
    case "exact":
      return value === m.value;
    case "prefix":
      return value.startsWith(m.value);
    case "regex":
      return m.value.test(value);
  }
}

/** What an HTTP match is evaluated against. */
export interface RequestFacts {
  path: string;
  query: URLSearchParams;
  method: string;
  authority: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  header(name: string): string | undefined;
  port: number;
  gateway: string;
}

export function httpMatches(m: HttpMatch, r: RequestFacts): boolean {
  if (m.port !== undefined && m.port !== r.port) return false;
  if (m.gateways && !m.gateways.includes(r.gateway)) return false;
  if (m.uri && !stringMatches(m.uri, r.path)) return false;
  if (m.method && !stringMatches(m.method, r.method)) return false;
  if (m.authority && !stringMatches(m.authority, r.authority)) return false;
  for (const [name, sm] of m.headers) if (!stringMatches(sm, r.header(name))) return false;
  for (const [name, sm] of m.queryParams) {
    const v = r.query.get(name) ?? undefined;
    if (!stringMatches(sm, v)) return false;
  }
  return true;
}
