/**
 * Interception with iptables (EdgeMesh's model, since Deno exposes no SO_ORIGINAL_DST): each
 * ClusterIP:port (and NodePort) is DNAT'd to the listener of that service port. Everything
 * lives in our own chains, applied as one `iptables-restore --noflush` batch:
 *
 *   nat    PREROUTING, OUTPUT → EDGEMESH-SERVICES (DNAT per ClusterIP:port)
 *                               └→ EDGEMESH-NODEPORTS (dst-type LOCAL, DNAT per NodePort)
 *   filter INPUT, FORWARD, OUTPUT → EDGEMESH-REJECT (ports without endpoints:
 *                               REJECT --reject-with tcp-reset / icmp-port-unreachable)
 *
 * The same chains exist in ip6tables for IPv6 ClusterIPs when an IPv6 listen address is set.
 */

import { execRunner, type RunResult } from "../hostnet/mod.ts";
import type { Logger } from "../log/mod.ts";
import { IptablesError } from "./errors.ts";

export const CHAIN_PREFIX = "EDGEMESH-";
export const NAT_SERVICES = "EDGEMESH-SERVICES";
export const NAT_NODEPORTS = "EDGEMESH-NODEPORTS";
export const FILTER_REJECT = "EDGEMESH-REJECT";

const JUMPS: readonly { table: "nat" | "filter"; chain: string; target: string }[] = [
  { table: "nat", chain: "PREROUTING", target: NAT_SERVICES },
  { table: "nat", chain: "OUTPUT", target: NAT_SERVICES },
  { table: "filter", chain: "INPUT", target: FILTER_REJECT },
  { table: "filter", chain: "FORWARD", target: FILTER_REJECT },
  { table: "filter", chain: "OUTPUT", target: FILTER_REJECT },
];
const JUMP_COMMENT = "edgemesh service portals";

/** What a command printed and how it ended (hostnet's runner result). */
export type CommandResult = RunResult;

/** Runs a command; injectable so tests can run it inside a network namespace. */
export interface CommandRunner {
  run(cmd: string, args: readonly string[], stdin?: string): Promise<CommandResult>;
}

/** Runs commands directly, or prefixed (e.g. `["ip", "netns", "exec", "ns1"]`). */
export function commandRunner(prefix: readonly string[] = []): CommandRunner {
  return {
    run: (cmd, args, stdin) =>
      prefix.length
        ? execRunner(prefix[0], [...prefix.slice(1), cmd, ...args], stdin)
        : execRunner(cmd, args, stdin),
  };
}

/** One service port to intercept. */
export interface InterceptRule {
  /** "ns/name:port/proto", written as the rule comment. */
  comment: string;
  clusterIPs: readonly string[];
  port: number;
  protocol: "tcp" | "udp";
  nodePort?: number;
  listenAddress: string;
  listenPort: number;
  /** The IPv6 listener, for IPv6 ClusterIPs and NodePorts (dual-stack). */
  listen6?: { address: string; port: number };
  hasEndpoints: boolean;
}

export type IpFamily = 4 | 6;

const TOOLS: Record<IpFamily, { restore: string; save: string; cmd: string }> = {
  4: { restore: "iptables-restore", save: "iptables-save", cmd: "iptables" },
  6: { restore: "ip6tables-restore", save: "ip6tables-save", cmd: "ip6tables" },
};

const isV4 = (ip: string) => /^\d+\.\d+\.\d+\.\d+$/.test(ip);

/** The restore payload for a rule set and address family (pure, deterministic). */
export function renderRules(rules: readonly InterceptRule[], family: IpFamily = 4): string {
  const nat = [`*nat`, `:${NAT_SERVICES} - [0:0]`, `:${NAT_NODEPORTS} - [0:0]`];
  const filter = [`*filter`, `:${FILTER_REJECT} - [0:0]`];
  const sorted = [...rules].sort((a, b) => a.comment.localeCompare(b.comment));
  const mask = family === 4 ? 32 : 128;
  for (const r of sorted) {
    const to = family === 4
      ? `${r.listenAddress}:${r.listenPort}`
      : r.listen6 && `[${r.listen6.address}]:${r.listen6.port}`;
    if (!to) continue;
    const c = `-m comment --comment "${r.comment.replace(/["\\]/g, "")}"`;
    const proto = `-p ${r.protocol} -m ${r.protocol}`;
    const reject = r.protocol === "tcp"
      ? "--reject-with tcp-reset"
      : family === 4
      ? "--reject-with icmp-port-unreachable"
      : "--reject-with icmp6-port-unreachable";
    const dnat = `-j DNAT --to-destination ${to}`;
    for (const ip of r.clusterIPs.filter((ip) => isV4(ip) === (family === 4))) {
      const match = `-d ${ip}/${mask} ${proto} --dport ${r.port} ${c}`;
      if (r.hasEndpoints) nat.push(`-A ${NAT_SERVICES} ${match} ${dnat}`);
      else filter.push(`-A ${FILTER_REJECT} ${match} -j REJECT ${reject}`);
    }
    if (r.nodePort) {
      const match = `${proto} --dport ${r.nodePort} ${c}`;
      if (r.hasEndpoints) nat.push(`-A ${NAT_NODEPORTS} ${match} ${dnat}`);
      else {filter.push(
          `-A ${FILTER_REJECT} -m addrtype --dst-type LOCAL ${match} -j REJECT ${reject}`,
        );}
    }
  }
  nat.push(`-A ${NAT_SERVICES} -m addrtype --dst-type LOCAL -j ${NAT_NODEPORTS}`);
  return [...nat, "COMMIT", ...filter, "COMMIT", ""].join("\n");
}

/** Applies rule sets; `start()` first removes leftovers of a crashed run. */
export class Proxier {
  #last?: string;
  #last6?: string;

  /** `ipv6`: also manage ip6tables (when an IPv6 listen address is configured). */
  constructor(private readonly deps: { runner: CommandRunner; logger: Logger; ipv6?: boolean }) {}

  async start(): Promise<void> {
    const removed = await cleanup(this.deps.runner);
    if (removed > 0) this.deps.logger.info("removed stale iptables rules", { rules: removed });
  }

  /**
   * Idempotent: applies the whole set in one batch per family and re-adds missing jumps.
   * Skipped when the set is unchanged since the last call, unless `force` (the periodic
   * re-sync, which also repairs rules someone else removed).
   */
  async sync(rules: readonly InterceptRule[], force = true): Promise<void> {
    const payload = renderRules(rules, 4);
    const payload6 = this.deps.ipv6 ? renderRules(rules, 6) : undefined;
    if (!force && payload === this.#last && payload6 === this.#last6) return;
    await this.#apply(4, payload);
    if (payload6 !== undefined) await this.#apply(6, payload6);
    if (payload !== this.#last || payload6 !== this.#last6) {
      this.deps.logger.debug("iptables rules applied", {
        rules: rules.length,
        ipv6: payload6 !== undefined,
      });
    }
    this.#last = payload;
    this.#last6 = payload6;
  }

  async stop(): Promise<void> {
    await cleanup(this.deps.runner);
    this.#last = this.#last6 = undefined;
  }

  async #apply(family: IpFamily, payload: string): Promise<void> {
    const t = TOOLS[family];
    await this.#exec(t.restore, ["--noflush"], payload);
    for (const j of JUMPS) {
      const spec = ["-m", "comment", "--comment", JUMP_COMMENT, "-j", j.target];
      const check = await this.deps.runner.run(t.cmd, [
        "-w",
        "-t",
        j.table,
        "-C",
        j.chain,
        ...spec,
      ]);
      if (check.code !== 0) {
        await this.#exec(t.cmd, ["-w", "-t", j.table, "-I", j.chain, "1", ...spec]);
      }
    }
  }

  async #exec(cmd: string, args: string[], stdin?: string): Promise<void> {
    const r = await this.deps.runner.run(cmd, args, stdin);
    if (r.code !== 0) throw new IptablesError(`${cmd} ${args.join(" ")}`, r.code, r.stderr);
  }
}

/**
 * Removes every jump to an `EDGEMESH-*` chain and the chains themselves, in nat and filter,
 * for IPv4 and (when ip6tables is installed) IPv6, in one batch per table — what `edgemesh
 * cleanup` runs. Returns the number of rules removed.
 */
export async function cleanup(runner: CommandRunner): Promise<number> {
  let removed = await cleanupFamily(runner, 4);
  try {
    removed += await cleanupFamily(runner, 6);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err; // no ip6tables on this host
  }
  return removed;
}

async function cleanupFamily(runner: CommandRunner, family: IpFamily): Promise<number> {
  const t = TOOLS[family];
  let removed = 0;
  for (const table of ["nat", "filter"]) {
    const saved = await runner.run(t.save, ["-t", table]);
    if (saved.code !== 0) {
      throw new IptablesError(`${t.save} -t ${table}`, saved.code, saved.stderr);
    }
    const chains: string[] = [];
    const deletes: string[] = [];
    for (const line of saved.stdout.split("\n")) {
      const chain = /^:(\S+) /.exec(line)?.[1];
      if (chain?.startsWith(CHAIN_PREFIX)) chains.push(chain);
      const rule = /^-A (\S+) (.*)$/.exec(line);
      if (!rule) continue;
      if (rule[1].startsWith(CHAIN_PREFIX)) removed++;
      else if (/-j EDGEMESH-\S+/.test(rule[2])) deletes.push(`-D ${rule[1]} ${rule[2]}`);
    }
    if (chains.length === 0 && deletes.length === 0) continue;
    removed += deletes.length;
    const payload = [
      `*${table}`,
      ...deletes,
      ...chains.map((c) => `:${c} - [0:0]`),
      ...chains.map((c) => `-X ${c}`),
      "COMMIT",
      "",
    ].join("\n");
    const r = await runner.run(t.restore, ["--noflush"], payload);
    if (r.code !== 0) {
      throw new IptablesError(`${t.restore} --noflush (cleanup ${table})`, r.code, r.stderr);
    }
  }
  return removed;
}
