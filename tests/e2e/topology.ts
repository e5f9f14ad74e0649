/**
 * The multi-LAN edge cluster of issue 9, built from network namespaces for one test:
 *
 * ```
 *                  wan bridge 198.18.0.0/24 (namespace "wan")
 *    relay r1 .0.11     relay r2 .0.12      nat-a .0.21            nat-b .0.22
 *                                            | LAN A 198.18.1.0/24   | LAN B 198.18.2.0/24
 *                                            | (namespace "lan-a")   | (namespace "lan-b")
 *                                           a1 .1.11   a2 .1.12     b1 .2.11   b2 .2.12
 * ```
 *
 * - Every box is a namespace named `em-<pid>-<4 hex>-<role>` (`topo.ns("a1")`), so parallel
 *   runs never collide; `lo` is up everywhere (agents and metaservers use 127.0.0.1 inside).
 * - Each switch ("wan", "lan-a", …) is a namespace holding one bridge `br0` (multicast
 *   snooping off, so mDNS floods like a dumb switch). A host joins it through a veth created
 *   directly between the two namespaces: `p-<role>` on the bridge, `eth0` in nodes and relays,
 *   `wan0`/`lan0` in NATs. Nothing is ever created in the root namespace, and interface names
 *   only need to be unique inside their own namespace (all ≤ 15 characters).
 * - NATs forward with plain MASQUERADE on `wan0` (source ports kept when free) and a home
 *   router's stateful forward filter (replies in, unsolicited WAN→LAN dropped). A SYN to the
 *   NAT's own address gets the kernel's RST, or is dropped with `stealth` NATs. Nodes route
 *   `default via 198.18.<lan>.1`; relays and NATs know only their connected /24s, so nothing
 *   routes out and LANs cannot reach each other.
 * - An optional "cloud" host (`issue9({ cloud: true })`: 198.18.0.2) carries a shared API
 *   server (support/cluster_api.ts).
 * - IPv6 is off in every namespace (only 198.18.0.0/15 on the wire); `224.0.0.0/4` routes
 *   out of `eth0` so mDNS works even on LANs without a NAT.
 * - `cutLink`/`healLink` set the host's bridge port down/up (a pulled cable: the host keeps its
 *   addresses and routes, it just loses carrier).
 *
 * Teardown: `await using topo = await Topology.create()` kills every process started through
 * it and deletes every namespace, also when the test throws; an `unload`/SIGINT/SIGTERM
 * safety net does the same synchronously, and `create()` first sweeps `em-*` namespaces of
 * runs whose PID is gone.
 */

import { delayForwarder, type DelayOptions } from "./support/delay.ts";
import {
  deleteNamespace,
  deleteNamespaceSync,
  listNamespaces,
  runPrefix,
  sweepStale,
} from "./support/netns.ts";
import {
  execIn,
  type ExecOptions,
  type ExecResult,
  NsProcess,
  type SpawnOptions,
} from "./support/proc.ts";

import { type HostKind, type HostSpec, issue9, type TopologySpec } from "./support/spec.ts";

export { CommandFailed, type ExecResult, NsProcess } from "./support/proc.ts";
export {
  type HostKind,
  type HostSpec,
  issue9,
  type LanSpec,
  singleLan,
  type TopologySpec,
} from "./support/spec.ts";

/** One namespace of the topology. */
export interface Host {
  name: string;
  kind: HostKind;
  ns: string;
  /** Primary IPv4 address: the WAN side for relays and NATs, the LAN address for nodes. */
  ip?: string;
  /** NATs: the LAN side (the nodes' gateway). */
  lanIp?: string;
  /** Nodes and NATs: the LAN name. */
  lan?: string;
}

/** A cable between a host interface and a bridge port of a switch namespace. */
interface Link {
  key: string;
  host: string;
  /** Switch host name ("wan", "lan-a"). */
  sw: string;
  /** Bridge port name in the switch namespace, `p-<host>` (≤ 15 characters). */
  port: string;
  iface: string;
  ip: string;
  gw?: string;
}

/** A set of iptables drops that can be undone. */
export interface Blocked extends AsyncDisposable {
  heal(): Promise<void>;
}

const WAN = 0;
const ROLE = /^[a-z][a-z0-9-]{0,12}$/;
const IPT = ["iptables", "-w", "5"];

/** A running topology. Dispose it (`await using`) or call `close()`. */
export class Topology implements AsyncDisposable {
  /** `em-<pid>-<4 hex>`: every namespace name starts with it. */
  readonly prefix: string;
  readonly #hosts = new Map<string, Host>();
  /** Cables: key = host name (+ ":lan" for a NAT's LAN side). */
  readonly #links: Link[] = [];
  readonly #stealth = new Set<string>();
  readonly #procs = new Set<NsProcess>();
  readonly #created = new Set<string>();
  readonly #deferred: (() => unknown)[] = [];
  readonly #onUnload = () => this.#teardownSync();
  readonly #onInt = () => this.#exitOnSignal(130);
  readonly #onTerm = () => this.#exitOnSignal(143);
  #closing?: Promise<void>;
  #syncDone = false;

  private constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** Builds the topology (default: all of issue 9). Sweeps stale runs first. */
  static async create(spec: TopologySpec = issue9()): Promise<Topology> {
    await sweepStale();
    const topo = new Topology(runPrefix());
    topo.#plan(spec);
    globalThis.addEventListener("unload", topo.#onUnload);
    Deno.addSignalListener("SIGINT", topo.#onInt);
    Deno.addSignalListener("SIGTERM", topo.#onTerm);
    try {
      await topo.#build();
    } catch (err) {
      await topo.close();
      throw err;
    }
    return topo;
  }

  /** Every host (switches included). */
  get hosts(): Host[] {
    return [...this.#hosts.values()];
  }

  /** Names of the hosts of a kind, e.g. `names("node")` → ["a1", "a2", "b1", "b2"]. */
  names(kind: HostKind): string[] {
    return this.hosts.filter((h) => h.kind === kind).map((h) => h.name);
  }

  /** Every namespace this topology made. */
  get namespaces(): string[] {
    return this.hosts.map((h) => h.ns);
  }

  host(name: string): Host {
    const h = this.#hosts.get(name);
    if (!h) {
      throw new Error(
        `No host "${name}" in this topology (have ${[...this.#hosts.keys()].join(", ")})`,
      );
    }
    return h;
  }

  /** The real namespace name of a host. */
  ns(name: string): string {
    return this.host(name).ns;
  }

  /** The host's primary address. */
  ip(name: string): string {
    const ip = this.host(name).ip;
    if (!ip) throw new Error(`Host "${name}" has no address`);
    return ip;
  }

  /** Runs a command inside a host's namespace (throws on non-zero unless `check: false`). */
  exec(name: string, cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult> {
    return execIn(this.ns(name), cmd, args, opts);
  }

  /** Starts a long-running process inside a host; it is killed at teardown. */
  spawn(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): NsProcess {
    if (this.#closing) throw new Error("Topology is closed");
    const p = new NsProcess(this.ns(name), cmd, args, {
      ...opts,
      label: opts.label ?? `${name}: ${cmd}`,
    });
    this.#procs.add(p);
    return p;
  }

  /** Processes started through `spawn` (for failure dumps). */
  get processes(): NsProcess[] {
    return [...this.#procs];
  }

  /** Pulls the cable of a host (for a NAT, its WAN side unless `side` is "lan"). */
  cutLink(name: string, side: "wan" | "lan" = "wan"): Promise<void> {
    return this.#setPort(name, side, "down");
  }

  /** Plugs the cable back in. */
  healLink(name: string, side: "wan" | "lan" = "wan"): Promise<void> {
    return this.#setPort(name, side, "up");
  }

  /** Drops all traffic between host `name` and `ip` (iptables INPUT/OUTPUT inside `name`). */
  async dropBetween(name: string, ip: string): Promise<Blocked> {
    return await this.#drop([[name, [ip]]]);
  }

  /** Splits the hosts in two groups that cannot talk to each other (both directions). */
  async partition(left: string[], right: string[]): Promise<Blocked> {
    return await this.#drop([
      ...left.map((n): [string, string[]] => [n, right.map((r) => this.ip(r))]),
      ...right.map((n): [string, string[]] => [n, left.map((l) => this.ip(l))]),
    ]);
  }

  /**
   * Starts a TCP forwarder inside `name` that delays every chunk by `delayMs` in each
   * direction (so the round trip grows by twice that); resolves once it listens.
   */
  delay(name: string, opts: DelayOptions): Promise<{ proc: NsProcess; port: number }> {
    return delayForwarder(this, name, opts);
  }

  /** Runs `fn` at teardown, after processes are killed (last registered runs first). */
  defer(fn: () => unknown): void {
    this.#deferred.push(fn);
  }

  /** All collected process output, for a failing scenario. */
  dumpLogs(): string {
    return this.processes.map((p) => p.dump()).join("\n");
  }

  /**
   * Kills every process started here, deletes every namespace and checks none is left.
   * Idempotent.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- building ------------------------------------------------------------------------------

  #add(h: Host): void {
    if (!ROLE.test(h.name)) {
      throw new Error(`Host name "${h.name}" must match ${ROLE} (bridge port names ≤ 15)`);
    }
    if (this.#hosts.has(h.name)) throw new Error(`Host name "${h.name}" used twice`);
    this.#hosts.set(h.name, h);
  }

  /** Records a cable from `host`'s `iface` (address `ip`/24) to a port of switch `sw`. */
  #link(key: string, sw: string, host: string, iface: string, ip: string, gw?: string): void {
    this.#links.push({ key, host, sw, port: `p-${key.split(":")[0]}`, iface, ip, gw });
  }

  #plan(spec: TopologySpec): void {
    const ns = (role: string) => `${this.prefix}-${role}`;
    const wanHost = (h: HostSpec, kind: HostKind) => {
      this.#add({ name: h.name, kind, ns: ns(h.name), ip: addr(WAN, h.host) });
      this.#link(h.name, "wan", h.name, "eth0", addr(WAN, h.host));
    };
    const cloudLan = spec.cloud?.lan;
    const needWan = (spec.relays?.length ?? 0) > 0 || spec.lans.some((l) => l.nat) ||
      (spec.cloud !== undefined && cloudLan === undefined);
    if (needWan) this.#add({ name: "wan", kind: "switch", ns: ns("wan") });
    for (const r of spec.relays ?? []) wanHost(r, "relay");
    if (spec.cloud && cloudLan === undefined) wanHost(spec.cloud, "cloud");
    for (const lan of spec.lans) {
      const sw = `lan-${lan.name}`;
      this.#add({ name: sw, kind: "switch", ns: ns(sw) });
      const gw = lan.nat ? addr(lan.subnet, 1) : undefined;
      if (lan.nat) {
        const nat = lan.nat.name;
        if (lan.nat.stealth) this.#stealth.add(nat);
        const ip = addr(WAN, lan.nat.host);
        this.#add({ name: nat, kind: "nat", ns: ns(nat), ip, lanIp: gw, lan: lan.name });
        this.#link(nat, "wan", nat, "wan0", ip);
        this.#link(`${nat}:lan`, sw, nat, "lan0", gw!);
      }
      const members: [HostSpec, HostKind][] = lan.nodes.map((n) => [n, "node"]);
      if (spec.cloud && cloudLan === lan.name) members.push([spec.cloud, "cloud"]);
      for (const [n, kind] of members) {
        const ip = addr(lan.subnet, n.host);
        this.#add({ name: n.name, kind, ns: ns(n.name), ip, lan: lan.name });
        this.#link(n.name, sw, n.name, "eth0", ip, gw);
      }
    }
    if (cloudLan !== undefined && !spec.lans.some((l) => l.name === cloudLan)) {
      throw new Error(`cloud.lan "${cloudLan}" names no LAN`);
    }
  }

  async #build(): Promise<void> {
    // 1. Namespaces, each with lo up and IPv6 off before any veth arrives.
    await Promise.all(this.hosts.map(async (h) => {
      this.#created.add(h.ns);
      await execIn(null, "ip", ["netns", "add", h.ns]);
      await this.#sh(h.ns, [
        "ip link set lo up",
        "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
      ]);
    }));
    // 2. Bridges, and veths created from inside each switch namespace straight into the host's.
    await Promise.all(
      this.hosts.filter((h) => h.kind === "switch").map(async (sw) =>
        await this.#sh(sw.ns, [
          "ip link add br0 type bridge mcast_snooping 0",
          "ip link set br0 up",
          ...this.#links.filter((l) => l.sw === sw.name).flatMap((l) => [
            `ip link add ${l.port} type veth peer name ${l.iface} netns ${this.ns(l.host)}`,
            `ip link set ${l.port} master br0`,
            `ip link set ${l.port} up`,
          ]),
        ])
      ),
    );
    // 3. Addresses, routes, and the NATs' forwarding and rules.
    const ipt = IPT.join(" ");
    await Promise.all(
      this.hosts.filter((h) => h.kind !== "switch").map((h) => {
        const links = this.#links.filter((l) => l.host === h.name);
        const lines = links.flatMap((l) => [
          `ip addr add ${l.ip}/24 dev ${l.iface}`,
          `ip link set ${l.iface} up`,
          ...(l.gw ? [`ip route add default via ${l.gw} dev ${l.iface}`] : []),
        ]);
        if (h.kind === "nat") {
          lines.push(
            "sysctl -qw net.ipv4.ip_forward=1",
            `${ipt} -t nat -A POSTROUTING -o wan0 -j MASQUERADE`,
            `${ipt} -A FORWARD -i wan0 -o lan0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
            `${ipt} -A FORWARD -i wan0 -j DROP`,
            ...(this.#stealth.has(h.name)
              ? [`${ipt} -A INPUT -i wan0 -m conntrack --ctstate NEW,INVALID -j DROP`]
              : []),
          );
        } else {
          lines.push(`ip route add 224.0.0.0/4 dev ${links[0].iface}`);
        }
        return this.#sh(h.ns, lines);
      }),
    );
  }

  /** Runs shell lines inside a namespace, stopping at the first failure. */
  #sh(ns: string, lines: string[]): Promise<ExecResult> {
    return execIn(ns, "sh", ["-ec", lines.join("\n")]);
  }

  async #setPort(name: string, side: "wan" | "lan", state: "up" | "down"): Promise<void> {
    const h = this.host(name);
    const key = h.kind === "nat" && side === "lan" ? `${name}:lan` : name;
    const link = this.#links.find((l) => l.key === key);
    if (!link) throw new Error(`Host "${name}" has no ${side} link`);
    await execIn(this.ns(link.sw), "ip", ["link", "set", link.port, state]);
  }

  async #drop(rules: [string, string[]][]): Promise<Blocked> {
    const lines = (op: "-I" | "-D") =>
      rules.map(([name, ips]): [string, string[]] => [
        name,
        ips.flatMap((ip) => [
          `${IPT.join(" ")} ${op} INPUT -s ${ip} -j DROP`,
          `${IPT.join(" ")} ${op} OUTPUT -d ${ip} -j DROP`,
        ]),
      ]);
    await Promise.all(lines("-I").map(([name, l]) => this.#sh(this.ns(name), l)));
    let healed: Promise<void> | undefined;
    const heal = () =>
      healed ??= (async () => {
        if (this.#closing) return;
        await Promise.all(lines("-D").map(([name, l]) => this.#sh(this.ns(name), l)));
      })();
    return { heal, [Symbol.asyncDispose]: heal };
  }

  // ---- teardown ------------------------------------------------------------------------------

  async #close(): Promise<void> {
    globalThis.removeEventListener("unload", this.#onUnload);
    Deno.removeSignalListener("SIGINT", this.#onInt);
    Deno.removeSignalListener("SIGTERM", this.#onTerm);
    await Promise.all(this.processes.map((p) => p.kill("SIGTERM", 2000)));
    const errors: unknown[] = [];
    for (const fn of this.#deferred.reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    await Promise.all([...this.#created].map((ns) => deleteNamespace(ns)));
    const left = (await listNamespaces()).filter((n) => this.#created.has(n));
    if (left.length > 0) throw new Error(`Namespaces left after teardown: ${left.join(", ")}`);
    if (errors.length > 0) throw new AggregateError(errors, "Teardown steps failed");
  }

  /** A SIGINT/SIGTERM listener replaces the default exit: clean up, then exit as killed. */
  #exitOnSignal(code: number): void {
    this.#teardownSync();
    Deno.exit(code);
  }

  #teardownSync(): void {
    if (this.#syncDone) return;
    this.#syncDone = true;
    for (const p of this.#procs) p.killNow();
    for (const ns of this.#created) deleteNamespaceSync(ns);
  }
}

function addr(subnet: number, host: number): string {
  return `198.18.${subnet}.${host}`;
}
