/** Local addresses and the interfaces edgemesh never listens on (EdgeMesh's filter list). */

/** Interface name prefixes never listened on. */
export const FILTERED_PREFIXES = [
  "docker",
  "edgemesh",
  "tunl",
  "flannel",
  "cni",
  "br",
  "kube-ipvs",
  "veth",
  "lo",
];

export interface LocalAddress {
  iface: string;
  address: string;
  family: "IPv4" | "IPv6";
}

export interface AddressFilter {
  /** "*" or a comma-separated list of interface names. */
  listenInterfaces?: string;
  extraFilteredInterfaces?: readonly string[];
  /** Keep loopback addresses (for tests). */
  includeLoopback?: boolean;
}

/** Usable local unicast addresses, skipping link-local IPv6 and filtered interfaces. */
export function localAddresses(
  filter: AddressFilter = {},
  interfaces: () => Deno.NetworkInterfaceInfo[] = () => Deno.networkInterfaces(),
): LocalAddress[] {
  const wanted = filter.listenInterfaces && filter.listenInterfaces !== "*"
    ? new Set(filter.listenInterfaces.split(",").map((s) => s.trim()).filter(Boolean))
    : undefined;
  const extra = filter.extraFilteredInterfaces ?? [];
  const out: LocalAddress[] = [];
  for (const i of interfaces()) {
    if (wanted && !wanted.has(i.name)) continue;
    const filtered = FILTERED_PREFIXES.some((p) => i.name.startsWith(p)) || extra.includes(i.name);
    if (!wanted && filtered && !(filter.includeLoopback && i.name === "lo")) continue;
    if (i.family === "IPv6" && /^fe80:/i.test(i.address)) continue;
    if (!filter.includeLoopback && (i.address.startsWith("127.") || i.address === "::1")) continue;
    out.push({ iface: i.name, address: i.address, family: i.family });
  }
  return out;
}

/** A free TCP port on `hostname` (the port may be taken again before use; callers retry). */
export function freePort(hostname = "127.0.0.1"): number {
  using l = Deno.listen({ hostname, port: 0 });
  return (l.addr as Deno.NetAddr).port;
}
