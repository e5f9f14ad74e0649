/** Is an IPv4 address in one of this host's own networks (its LANs)? */

/** `a.b.c.d` as an unsigned 32-bit number (undefined when not IPv4). */
export function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** True when `ip` lies in one of `cidrs` (`198.18.1.11/24`; IPv6 entries are ignored). */
export function inNetworks(ip: string, cidrs: string[]): boolean {
  const x = ipv4ToInt(ip);
  if (x === undefined) return false;
  for (const c of cidrs) {
    const [base, bitsText] = c.split("/");
    const b = ipv4ToInt(base);
    const bits = Number(bitsText);
    if (b === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) continue;
    const size = 2 ** (32 - bits);
    if (Math.floor(x / size) === Math.floor(b / size)) return true;
  }
  return false;
}

/**
 * The host's IPv4 networks from `Deno.networkInterfaces()`, re-read at most every `cacheMs`
 * (interfaces come and go). Needs `--allow-sys=networkInterfaces`; without it every address
 * counts as local, so no peer can prove that we are reachable from outside (the safe side).
 */
export function hostNetworks(cacheMs = 10_000): (ip: string) => boolean {
  let cidrs: string[] = [];
  let readAt = -Infinity;
  return (ip) => {
    const t = performance.now();
    if (t - readAt > cacheMs) {
      readAt = t;
      try {
        cidrs = Deno.networkInterfaces().filter((i) => i.family === "IPv4").map((i) => i.cidr);
      } catch (err) {
        if (
          !(err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied)
        ) {
          throw err;
        }
        cidrs = ["0.0.0.0/0"];
      }
    }
    return inNetworks(ip, cidrs);
  };
}
