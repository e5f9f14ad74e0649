/** Address syntax checks used by the config schema (no DNS, no sockets). */

export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

export function isIPv6(s: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(":")) return false;
  const dbl = s.split("::");
  if (dbl.length > 2) return false;
  const groups = (x: string) => (x === "" ? [] : x.split(":"));
  let parts = [...groups(dbl[0]), ...(dbl.length === 2 ? groups(dbl[1]) : [])];
  let need = 8;
  const last = parts[parts.length - 1];
  if (last?.includes(".")) {
    if (!isIPv4(last)) return false;
    parts = parts.slice(0, -1);
    need = 6;
  }
  if (!parts.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  return dbl.length === 2 ? parts.length < need : parts.length === need;
}

export function isIP(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

/** Splits "host:port" or "[v6]:port". Returns undefined when malformed. */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:]+):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  return { host: m[1], port };
}

export const checkIP = (v: string): string | undefined =>
  isIP(v) ? undefined : `must be an IPv4 or IPv6 address, got ${JSON.stringify(v)}`;

export const checkOptionalIP = (
  v: string,
): string | undefined => (v === "" ? undefined : checkIP(v));

export const checkHostPort = (v: string): string | undefined => {
  const hp = parseHostPort(v);
  if (!hp) return `must be "host:port" (IPv6 as "[addr]:port"), got ${JSON.stringify(v)}`;
  if (!isIP(hp.host) && hp.host !== "localhost") {
    return `host must be an IP address, got ${JSON.stringify(hp.host)}`;
  }
  return undefined;
};

/** "ip" or "ip:port" (DNS upstreams). */
export const checkIPOrHostPort = (v: string): string | undefined =>
  isIP(v)
    ? undefined
    : checkHostPort(v) && `must be an IP address or "ip:port", got ${JSON.stringify(v)}`;

export const checkURL = (v: string): string | undefined => {
  if (v === "") return undefined;
  try {
    const u = new URL(v);
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      return `must be an http:// or https:// URL, got ${JSON.stringify(v)}`;
    }
    return undefined;
  } catch {
    return `must be a URL like "http://127.0.0.1:10550", got ${JSON.stringify(v)}`;
  }
};

export const checkDomain = (v: string): string | undefined =>
  /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(v)
    ? undefined
    : `must be a lower-case DNS domain like "cluster.local", got ${JSON.stringify(v)}`;

/** A libp2p multiaddr must start with "/" and name a protocol; full parsing happens in the tunnel. */
export const checkMultiaddr = (v: string): string | undefined =>
  /^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d+(\/.*)?$/.test(v)
    ? undefined
    : `must be a multiaddr like "/ip4/127.0.0.1/tcp/20006/p2p/12D3Koo…", got ${JSON.stringify(v)}`;
