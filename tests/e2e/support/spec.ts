/**
 * What a topology is made of: the spec types and the two presets (issue 9's drawing and one
 * bridged LAN). Built by `Topology.create()` in ../topology.ts.
 */

/** A host on a segment: `host` is the last octet of its address. */
export interface HostSpec {
  name: string;
  host: number;
}

/** A LAN `198.18.<subnet>.0/24`, optionally behind a NAT on the WAN (gateway `.1`). */
export interface LanSpec {
  /** Short name; the switch namespace is `lan-<name>`. */
  name: string;
  /** Third octet (1..255). */
  subnet: number;
  /**
   * The NAT's WAN side; its LAN side is `198.18.<subnet>.1`. By default an unsolicited TCP SYN
   * to the NAT's own address is answered with a RST by its kernel (a Linux router without a
   * firewall); `stealth: true` drops it instead (most home routers).
   */
  nat?: HostSpec & { stealth?: boolean };
  nodes: HostSpec[];
}

export interface TopologySpec {
  /** Relays on the WAN `198.18.0.0/24`. */
  relays?: HostSpec[];
  lans: LanSpec[];
  /**
   * A "cloud" host for a shared API server (see `ClusterApi` in support/cluster_api.ts): on the WAN, or on the LAN
   * named by `lan` (`198.18.<subnet>.<host>`).
   */
  cloud?: HostSpec & { lan?: string };
}

export type HostKind = "switch" | "relay" | "nat" | "node" | "cloud";

/** The full topology drawn in issue 9, or a part of it (`{ lans: ["a"], relays: ["r1"] }`). */
export function issue9(
  opts: { lans?: ("a" | "b")[]; relays?: ("r1" | "r2")[]; cloud?: boolean; stealth?: boolean } = {},
): TopologySpec {
  const lans = opts.lans ?? ["a", "b"];
  const relays = opts.relays ?? ["r1", "r2"];
  return {
    cloud: opts.cloud ? { name: "cloud", host: 2 } : undefined,
    relays: [{ name: "r1", host: 11 }, { name: "r2", host: 12 }].filter((r) =>
      relays.includes(r.name as "r1")
    ),
    lans: [
      {
        name: "a",
        subnet: 1,
        nat: { name: "nat-a", host: 21, stealth: opts.stealth },
        nodes: [{ name: "a1", host: 11 }, { name: "a2", host: 12 }],
      },
      {
        name: "b",
        subnet: 2,
        nat: { name: "nat-b", host: 22, stealth: opts.stealth },
        nodes: [{ name: "b1", host: 11 }, { name: "b2", host: 12 }],
      },
    ].filter((l) => lans.includes(l.name as "a")),
  };
}

/** One bridged LAN without NAT or WAN: nodes `<prefix>1..n` at `198.18.<subnet>.11…`. */
export function singleLan(
  opts: { nodes?: number; prefix?: string; subnet?: number; name?: string; cloud?: boolean } = {},
): TopologySpec {
  const prefix = opts.prefix ?? "h";
  const n = opts.nodes ?? 5;
  return {
    cloud: opts.cloud ? { name: "cloud", host: 2, lan: opts.name ?? prefix } : undefined,
    lans: [{
      name: opts.name ?? prefix,
      subnet: opts.subnet ?? 3,
      nodes: Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i + 1}`, host: 11 + i })),
    }],
  };
}
