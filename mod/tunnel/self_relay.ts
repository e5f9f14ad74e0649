/**
 * Who relays, decided at run time from reachability:
 * - a node listed in `relayNodes` relays from the start, stops (with a warning naming its
 *   `advertiseAddress`) once dial-backs show it is not reachable from outside, and works as a
 *   normal node then (reserving on other relays); it relays again once it is reachable;
 * - with no `relayNodes` at all (and `selfRelay` on), a node relays once a peer outside its
 *   LAN dialled it back, and stops when it is found unreachable;
 * - every node adds connected peers that offer relay service (identify's HOP protocol) to its
 *   relay candidates, after the configured ones.
 * It also answers other nodes' dial-back requests.
 */

import type { Connection, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { Libp2p } from "libp2p";
import type { Logger } from "../log/mod.ts";
import { directOpen, isCircuit, isLoopback } from "./addrs.ts";
import { Dialback, type DialbackOptions, tcpAddrOf } from "./dialback.ts";
import { DIALBACK_PROTOCOL, type DialbackAddr, MAX_DIALBACK_ADDRS } from "./dialback_wire.ts";
import { toMultiaddr } from "./host.ts";
import { hostNetworks } from "./local_net.ts";
import { CLAIM_TIMEOUT_MS, type Membership } from "./membership.ts";
import type { TunnelMetrics } from "./metrics.ts";
import type { RelayNode } from "./options.ts";
import { Reachability, type ReachabilityOptions, type Verdict } from "./reachability.ts";
import type { RelayOffers } from "./relay_offers.ts";
import { RelayRole } from "./relay_role.ts";
import type { RelayManager } from "./relays.ts";
import type { TaskSet } from "./tasks.ts";

/** What this node does about relaying, given its configuration and its reachability. */
export function relayRole(p: {
  listed: boolean;
  relaysConfigured: boolean;
  selfRelay: boolean;
  verdict: Verdict;
}): { check: boolean; serve: boolean } {
  if (p.listed) return { check: true, serve: p.verdict !== "unreachable" };
  if (!p.relaysConfigured && p.selfRelay) return { check: true, serve: p.verdict === "reachable" };
  return { check: false, serve: false };
}

export interface SelfRelayDeps {
  node: Libp2p<Record<string, unknown>>;
  membership: Membership;
  relays: RelayManager;
  offers: RelayOffers;
  logger: Logger;
  metrics: TunnelMetrics;
  tasks: TaskSet;
  shutdown: AbortSignal;
  now: () => number;
  /** Same-LAN test for an IPv4 address (default: this host's interface networks). */
  isLocalNet?: (ip: string) => boolean;
}

export interface SelfRelayOptions {
  nodeName: string;
  listenPort: number;
  relayNodes: RelayNode[];
  /** With no relayNodes, offer relay service once reachable from outside. */
  selfRelay: boolean;
  reachability?: Partial<ReachabilityOptions>;
  dialback?: Partial<DialbackOptions>;
}

export class SelfRelay {
  readonly role: RelayRole;
  readonly reachability: Reachability;
  readonly dialback: Dialback;
  readonly #log: Logger;
  readonly #isLocalNet: (ip: string) => boolean;
  #relayNodes: RelayNode[];
  #applying: Promise<void> = Promise.resolve();
  #offeredKey = "";
  #onSelfUpdate = () => this.reachability.kick();

  constructor(readonly deps: SelfRelayDeps, readonly opts: SelfRelayOptions) {
    this.#log = deps.logger;
    this.#relayNodes = opts.relayNodes;
    this.#isLocalNet = deps.isLocalNet ?? hostNetworks();
    const { node, membership } = deps;
    this.role = new RelayRole({
      node,
      host: {
        memberNode: (p) => membership.waitVerified(p, CLAIM_TIMEOUT_MS),
        directConnections: (p) => directOpen(node.getConnections(peerIdFromString(p))),
        addresses: () => this.#ownAddrs(),
      },
      logger: deps.logger.child("relay-server"),
      metrics: deps.metrics,
      tasks: deps.tasks,
      shutdown: deps.shutdown,
      now: deps.now,
    });
    this.dialback = new Dialback({
      node,
      memberNode: (p) => membership.waitVerified(p, CLAIM_TIMEOUT_MS),
      advertised: (n) => this.#advertised(n),
      isLocalNet: this.#isLocalNet,
      logger: deps.logger,
      shutdown: deps.shutdown,
      now: deps.now,
    }, opts.dialback);
    this.reachability = new Reachability({
      logger: deps.logger,
      helpers: () => this.#helpers(),
      ask: (c, signal) => this.dialback.ask(c, this.#dialbackAddrs(), signal),
      addressesKey: () => this.#dialbackAddrs().map((a) => `${a.ip}:${a.port}`).join(","),
      isNear: (c) => {
        const a = tcpAddrOf(c.remoteAddr);
        return a !== undefined && this.#isLocalNet(a.ip);
      },
      onVerdict: (v, prev, attempts) => {
        this.#log.info("reachability", {
          verdict: v,
          previous: prev,
          helpers: attempts.map((a) =>
            `${membership.dir.nodeOf(a.helper) ?? a.helper}:${a.outcome}${a.outside ? "" : "(lan)"}`
          ),
        });
        this.#apply();
      },
      now: deps.now,
    }, opts.reachability);
  }

  /** True while this node offers relay service. */
  get serving(): boolean {
    return this.role.active;
  }

  get verdict(): Verdict {
    return this.reachability.verdict;
  }

  /** True while dial-backs are asked for (this node listed, or no relays configured). */
  get checking(): boolean {
    return this.reachability.enabled;
  }

  /** Registers the dial-back protocol and takes the initial role (before the node starts). */
  async install(): Promise<void> {
    const { node, offers, relays } = this.deps;
    await node.handle(
      DIALBACK_PROTOCOL,
      (s: Stream, c: Connection) => this.deps.tasks.track(this.dialback.handle(s, c)),
      { maxInboundStreams: 8, maxOutboundStreams: 8 },
    );
    offers.onChange((peerId) => {
      relays.onOffersChanged(peerId);
      this.#refreshOffered();
    });
    node.addEventListener("self:peer:update", this.#onSelfUpdate);
    this.#apply();
    await this.#applying;
  }

  onConnectionOpen(conn: Connection): void {
    if (isCircuit(conn.remoteAddr)) return;
    const peer = conn.remotePeer.toString();
    this.deps.tasks.track(
      this.deps.membership.waitVerified(peer, CLAIM_TIMEOUT_MS).then((name) => {
        if (name === undefined || this.deps.shutdown.aborted) return;
        this.#refreshOffered();
        this.reachability.kick();
      }),
    );
  }

  onConnectionClose(conn: Connection): void {
    if (this.deps.shutdown.aborted) return;
    const peer = conn.remotePeer;
    if (directOpen(this.deps.node.getConnections(peer)).length > 0) return;
    this.deps.offers.forget(peer.toString());
    this.#refreshOffered();
  }

  /** relayNodes changed (hot reload): the role follows at once. */
  setRelayNodes(relays: RelayNode[]): void {
    this.#relayNodes = relays;
    this.#refreshOffered();
    this.#apply();
  }

  async stop(): Promise<void> {
    this.deps.node.removeEventListener("self:peer:update", this.#onSelfUpdate);
    await this.reachability.stop();
    await this.#applying;
  }

  #listed(): RelayNode | undefined {
    return this.#relayNodes.find((r) => r.nodeName === this.opts.nodeName);
  }

  /** Takes the role the configuration and the verdict call for (serialized). */
  #apply(): void {
    this.#applying = this.#applying.then(() => this.#applyNow()).catch((err) =>
      this.#log.error("cannot change the relay role", { error: err })
    );
    this.deps.tasks.track(this.#applying);
  }

  async #applyNow(): Promise<void> {
    if (this.deps.shutdown.aborted) return;
    const listed = this.#listed();
    const verdict = this.reachability.verdict;
    const want = relayRole({
      listed: !!listed,
      relaysConfigured: this.#relayNodes.length > 0,
      selfRelay: this.opts.selfRelay,
      verdict,
    });
    this.reachability.setEnabled(want.check);
    if (want.serve && !this.role.active) {
      await this.role.start(!listed);
      if (listed && verdict === "reachable") {
        this.#log.info("reachable from outside again; relaying", {
          advertiseAddress: listed.advertiseAddress,
        });
      } else if (!listed) {
        this.#log.info("reachable from outside; offering relay service", {
          addresses: this.#dialbackAddrs().map((a) => `${a.ip}:${a.port}`),
        });
      }
    } else if (!want.serve && this.role.active) {
      await this.role.stop();
      if (listed) {
        this.#log.warn(
          "listed in relayNodes but not reachable from outside; not relaying, working as a normal node",
          { advertiseAddress: listed.advertiseAddress },
        );
      } else {
        this.#log.info("relay service stopped", { verdict });
      }
    }
    this.deps.relays.setReserve(!want.serve);
  }

  /** Our addresses worth handing out: not loopback unless we live on loopback, not circuits. */
  #ownAddrs(): Multiaddr[] {
    const all = this.deps.node.getMultiaddrs().filter((a) => !isCircuit(a));
    const outer = all.filter((a) => !isLoopback(a));
    return outer.length ? outer : all;
  }

  #dialbackAddrs(): DialbackAddr[] {
    const out: DialbackAddr[] = [];
    for (const ma of this.#ownAddrs()) {
      const a = tcpAddrOf(ma);
      if (a && !out.some((o) => o.ip === a.ip && o.port === a.port)) out.push(a);
    }
    return out.slice(0, MAX_DIALBACK_ADDRS);
  }

  #advertised(node: string): DialbackAddr[] {
    const r = this.#relayNodes.find((x) => x.nodeName === node);
    const out: DialbackAddr[] = [];
    for (const s of r?.advertiseAddress ?? []) {
      try {
        const a = tcpAddrOf(toMultiaddr(s, this.opts.listenPort));
        if (a) out.push(a);
      } catch {
        // A bad address is reported by the tunnel when it builds the relay list.
      }
    }
    return out;
  }

  /** One open direct connection per verified peer. */
  #helpers(): Connection[] {
    const byPeer = new Map<string, Connection>();
    for (const c of directOpen(this.deps.node.getConnections())) {
      const id = c.remotePeer.toString();
      if (!byPeer.has(id) && this.deps.membership.dir.nodeOf(id) !== undefined) byPeer.set(id, c);
    }
    return [...byPeer.values()];
  }

  /** Connected peers offering relay service become relay candidates (configured ones win). */
  #refreshOffered(): void {
    const { node, offers, membership } = this.deps;
    const configured = new Set(this.#relayNodes.map((r) => r.nodeName));
    const onLoopback = node.getMultiaddrs().some(isLoopback);
    const list: { node: string; addrs: Multiaddr[] }[] = [];
    for (const peer of offers.selfOffering()) {
      const conns = directOpen(node.getConnections(peerIdFromString(peer)));
      const name = membership.dir.nodeOf(peer);
      if (!conns.length || !name || name === this.opts.nodeName || configured.has(name)) continue;
      const addrs: Multiaddr[] = [];
      const seen = new Set<string>();
      const p2p = `/p2p/${peer}`;
      for (
        const ma of [
          ...conns.filter((c) => c.direction === "outbound").map((c) => c.remoteAddr),
          ...offers.addrs(peer),
        ]
      ) {
        const bare = ma.toString().endsWith(p2p) ? ma.decapsulate(p2p) : ma;
        const key = bare.toString();
        if (isCircuit(bare) || (!onLoopback && isLoopback(bare)) || seen.has(key)) continue;
        seen.add(key);
        addrs.push(bare);
      }
      if (addrs.length) list.push({ node: name, addrs });
    }
    list.sort((a, b) => a.node.localeCompare(b.node));
    const key = JSON.stringify(list.map((r) => [r.node, r.addrs.map(String)]));
    if (key === this.#offeredKey) return;
    this.#offeredKey = key;
    if (list.length) this.#log.info("relays offered by peers", { relays: list.map((r) => r.node) });
    this.deps.relays.setOffered(list);
  }
}
