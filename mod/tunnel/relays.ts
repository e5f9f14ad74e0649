/**
 * Relay selection: measure the RTT to every known relay, keep reservations on the nearest two
 * (primary and hot standby), re-rank periodically with hysteresis, fail over the moment the
 * primary's connection closes, and reconnect to relays that come back.
 */

import type { Multiaddr } from "@multiformats/multiaddr";
import type { Logger } from "../log/mod.ts";
import type { TunnelMetrics } from "./metrics.ts";
import { chooseRelays, type RelayChoice } from "./ranking.ts";
import { deadline } from "./stream_io.ts";

/** What the relay manager needs from the libp2p host (implemented by the Tunnel). */
export interface RelayHost {
  /** Dials the relay and waits until its claim is verified; returns its peer ID. */
  connect(node: string, addrs: Multiaddr[], signal: AbortSignal): Promise<string>;
  isConnected(peerId: string): boolean;
  /** Least RTT of `pings` pings (default 3). */
  measureRtt(node: string, peerId: string, signal: AbortSignal, pings?: number): Promise<number>;
  reserve(peerId: string, signal: AbortSignal): Promise<void>;
  hasReservation(peerId: string): boolean;
  /** performance.now() of the last bytes received from the relay (0 when none). */
  lastActivity(peerId: string): number;
  /** Closes the direct connections to a relay that stopped answering. */
  abort(peerId: string): void;
  /** Drops a reservation that is no longer wanted (when nothing runs through the relay). */
  release(peerId: string): Promise<void>;
  /** Whether the peer offers relay service (HOP), undefined while unknown. */
  offersRelay?(peerId: string): boolean | undefined;
}

export interface RelayEntry {
  node: string;
  addrs: Multiaddr[];
  peerId?: string;
  rttMs?: number;
  alive: boolean;
  /** Current reconnect backoff (ms), 0 when connected. */
  backoffMs: number;
  timer?: ReturnType<typeof setTimeout>;
  probing?: Promise<void>;
  lastError?: string;
  /** Delay before the next reservation retry after failures, 0 when none failed. */
  reserveBackoffMs?: number;
  reserveTimer?: ReturnType<typeof setTimeout>;
  /**
   * Connected but not offering relay service (a listed relay that found itself unreachable):
   * still measured, never chosen, reserved or dialled through.
   */
  noHop?: boolean;
  /** Offered by the relay itself (reachable, no relayNodes configured), not configured. */
  offered?: boolean;
}

export interface RelayView {
  node: string;
  role: "primary" | "standby" | "candidate";
  rttMs: number | null;
  reserved: boolean;
  /** Why the last probe failed, while the relay is unreachable. */
  error?: string;
}

export interface RelayManagerOptions {
  probePeriodMs: number;
  /**
   * How often the primary and standby are pinged; a relay that misses a ping while no traffic
   * went through it for as long is declared dead (hung detection).
   */
  livenessMs: number;
  /** Least time a liveness ping may take before the relay counts as hung (if also silent). */
  livenessTimeoutMs: number;
  maxCandidates: number;
  /** False on relay nodes themselves: they rank relays for dialing but reserve nothing. */
  reserve: boolean;
  connectTimeoutMs?: number;
}

const FIRST_BACKOFF_MS = 100;
/** A lost relay is retried at least this often (a TCP connect attempt is cheap). */
const MAX_BACKOFF_MS = 2000;
const RESERVE_RETRY_MS = 500;
const MAX_RESERVE_RETRY_MS = 30_000;

export class RelayManager {
  #relays = new Map<string, RelayEntry>();
  #choice: RelayChoice = {};
  #timer?: ReturnType<typeof setTimeout>;
  #liveness?: ReturnType<typeof setInterval>;
  #checking = new Set<string>();
  #stopped = true;
  #shutdown = new AbortController();
  #configured: { node: string; addrs: Multiaddr[] }[] = [];
  #offered: { node: string; addrs: Multiaddr[] }[] = [];
  #reserving: boolean;

  constructor(
    readonly host: RelayHost,
    readonly logger: Logger,
    readonly metrics: TunnelMetrics,
    readonly opts: RelayManagerOptions,
  ) {
    this.#reserving = opts.reserve;
  }

  /** Replaces the configured relay list (hot reload); new relays are probed at once. */
  setRelays(relays: { node: string; addrs: Multiaddr[] }[]): void {
    this.#configured = relays;
    this.#apply();
  }

  /**
   * Replaces the relays that offered themselves (reachable nodes when no relay is configured).
   * Configured relays win: an offered relay with a configured name is ignored.
   */
  setOffered(relays: { node: string; addrs: Multiaddr[] }[]): void {
    this.#offered = relays;
    this.#apply();
  }

  /** Whether this node reserves on relays (false while it is a relay itself). */
  setReserve(reserve: boolean): void {
    if (reserve === this.#reserving) return;
    this.#reserving = reserve;
    this.#rerank("role");
  }

  /**
   * Called when a peer started or stopped offering relay service (identify push): a relay
   * that stopped is no longer chosen (streams move to the standby), one that resumed may be.
   */
  onOffersChanged(peerId: string): void {
    const offers = this.host.offersRelay?.(peerId);
    for (const e of this.#relays.values()) {
      if (e.peerId !== peerId || (offers === false) === !!e.noHop) continue;
      e.noHop = offers === false;
      this.logger.info(
        e.noHop ? "relay stopped offering relay service" : "relay offers relay service",
        {
          relay: e.node,
        },
      );
      this.#rerank(e.noHop ? "withdrawn" : "offered");
    }
  }

  #apply(): void {
    const names = new Set(this.#configured.map((r) => r.node));
    const relays = [
      ...this.#configured,
      ...this.#offered.filter((r) => !names.has(r.node)).map((r) => ({ ...r, offered: true })),
    ];
    const keep = new Set<string>();
    for (const r of relays.slice(0, this.opts.maxCandidates)) {
      keep.add(r.node);
      const offered = "offered" in r;
      const cur = this.#relays.get(r.node);
      if (cur) {
        cur.addrs = r.addrs;
        cur.offered = offered;
      } else {
        this.#relays.set(r.node, {
          node: r.node,
          addrs: r.addrs,
          alive: false,
          backoffMs: 0,
          offered,
        });
      }
    }
    for (const [node, e] of this.#relays) {
      if (keep.has(node)) continue;
      clearTimeout(e.timer);
      clearTimeout(e.reserveTimer);
      this.#relays.delete(node);
      if (e.peerId && this.host.hasReservation(e.peerId)) void this.host.release(e.peerId);
    }
    if (!this.#stopped) {
      this.#rerank("config");
      for (const e of this.#relays.values()) {
        if (!e.alive) void this.#probe(e).then(() => this.#rerank("config"));
      }
    }
  }

  start(): void {
    this.#stopped = false;
    this.#shutdown = new AbortController();
    void this.#round();
    this.#liveness = setInterval(() => this.#checkLiveness(), this.opts.livenessMs);
  }

  stop(): void {
    this.#stopped = true;
    this.#shutdown.abort();
    clearTimeout(this.#timer);
    clearInterval(this.#liveness);
    for (const e of this.#relays.values()) {
      clearTimeout(e.timer);
      clearTimeout(e.reserveTimer);
    }
  }

  /** Pings the primary and standby; one that misses a ping while idle is dropped at once. */
  #checkLiveness(): void {
    for (const node of [this.#choice.primary, this.#choice.standby]) {
      const e = node ? this.#relays.get(node) : undefined;
      if (!e?.alive || !e.peerId || e.probing || this.#checking.has(e.node)) continue;
      const peerId = e.peerId;
      // At least a monitor interval, or 4 RTTs: the libp2p monitor's own pings then bring
      // some bytes back from a slow but healthy relay within the window.
      const timeout = Math.max(this.opts.livenessTimeoutMs, 4 * (e.rttMs ?? 0));
      this.#checking.add(e.node);
      const started = performance.now();
      const d = deadline(timeout, this.#shutdown.signal);
      this.host.measureRtt(e.node, peerId, d.signal, 1).then(
        (rtt) => {
          e.rttMs = e.rttMs === undefined ? rtt : e.rttMs * 0.8 + rtt * 0.2;
        },
        (err) => {
          if (this.#stopped || e.peerId !== peerId || !e.alive) return;
          if (this.host.lastActivity(peerId) > started) return; // traffic flowed meanwhile: busy, not hung
          this.logger.warn("relay stopped answering; failing over", {
            relay: e.node,
            timeoutMs: timeout,
            error: err,
          });
          this.host.abort(peerId);
          this.onDisconnected(peerId);
        },
      ).finally(() => {
        d.clear();
        this.#checking.delete(e.node);
      });
    }
  }

  /** Awaits a full probe round (for tests and for `start` callers that want relays). */
  async probeNow(): Promise<void> {
    await Promise.all([...this.#relays.values()].map((e) => this.#probe(e)));
    this.#rerank("probe");
  }

  async #round(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.probeNow();
    } finally {
      if (!this.#stopped) {
        this.#timer = setTimeout(() => void this.#round(), this.opts.probePeriodMs);
      }
    }
  }

  #probe(e: RelayEntry): Promise<void> {
    e.probing ??= (async () => {
      const d = deadline(this.opts.connectTimeoutMs ?? 3000, this.#shutdown.signal);
      try {
        if (!e.peerId || !this.host.isConnected(e.peerId)) {
          e.peerId = await this.host.connect(e.node, e.addrs, d.signal);
        }
        const noHop = this.host.offersRelay?.(e.peerId) === false;
        if (noHop && !e.noHop) {
          this.logger.warn("relay does not offer relay service", { relay: e.node });
        }
        e.noHop = noHop;
        const rtt = await this.host.measureRtt(e.node, e.peerId, d.signal);
        e.rttMs = rtt;
        if (!e.alive) {
          this.logger.info("relay reachable", { relay: e.node, rttMs: Math.round(rtt * 10) / 10 });
        }
        e.alive = true;
        e.backoffMs = 0;
        e.lastError = undefined;
      } catch (err) {
        if (e.alive || e.backoffMs === 0) {
          this.logger.warn("relay unreachable", { relay: e.node, error: err });
        }
        e.alive = false;
        e.lastError = err instanceof Error ? err.message : String(err);
        if (!this.#stopped) this.#scheduleReconnect(e);
      } finally {
        d.clear();
        e.probing = undefined;
      }
    })();
    return e.probing;
  }

  #scheduleReconnect(e: RelayEntry): void {
    if (e.timer !== undefined || this.#stopped) return;
    e.backoffMs = Math.min(
      e.backoffMs ? e.backoffMs * 2 : FIRST_BACKOFF_MS,
      MAX_BACKOFF_MS,
      this.opts.probePeriodMs,
    );
    e.timer = setTimeout(async () => {
      e.timer = undefined;
      await this.#probe(e);
      if (e.alive) this.#rerank("reconnected");
    }, e.backoffMs);
  }

  /** Called by the host when the last connection to `peerId` closed. */
  onDisconnected(peerId: string): void {
    for (const e of this.#relays.values()) {
      if (e.peerId !== peerId) continue;
      if (e.alive) this.logger.warn("relay connection lost", { relay: e.node });
      e.alive = false;
      this.#rerank("failover");
      this.#scheduleReconnect(e);
    }
  }

  #rerank(reason: string): void {
    if (this.#stopped) return;
    const before = this.#choice;
    const next = chooseRelays(
      before,
      [...this.#relays.values()].map((e) => ({
        node: e.node,
        rttMs: e.rttMs,
        alive: e.alive && !e.noHop,
      })),
    );
    this.#choice = next;
    if (next.primary !== before.primary) {
      this.metrics.relaySwitches.inc({ reason });
      this.logger.info("primary relay", {
        relay: next.primary ?? null,
        previous: before.primary ?? null,
        reason,
      });
    }
    for (const e of this.#relays.values()) {
      const role = this.roleOf(e.node);
      if (!this.#reserving || !e.alive || !e.peerId) continue;
      if (role !== "candidate" && !this.host.hasReservation(e.peerId)) {
        void this.#reserve(e, e.peerId);
      }
      if (role === "candidate" && (before.primary === e.node || before.standby === e.node)) {
        void this.host.release(e.peerId);
      }
    }
  }

  async #reserve(e: RelayEntry, peerId: string): Promise<void> {
    const d = deadline(this.opts.connectTimeoutMs ?? 3000, this.#shutdown.signal);
    try {
      await this.host.reserve(peerId, d.signal);
      this.logger.debug("relay reservation made", { relay: e.node, role: this.roleOf(e.node) });
      e.reserveBackoffMs = 0;
    } catch (err) {
      if (!this.#stopped) {
        if (!e.reserveBackoffMs) {
          this.logger.warn("relay reservation failed; retrying", { relay: e.node, error: err });
        }
        // Retry soon (not at the next probe round), backing off for a relay that keeps refusing.
        e.reserveBackoffMs = Math.min(
          2 * (e.reserveBackoffMs || RESERVE_RETRY_MS / 2),
          MAX_RESERVE_RETRY_MS,
        );
        clearTimeout(e.reserveTimer);
        e.reserveTimer = setTimeout(() => {
          e.reserveTimer = undefined;
          this.#rerank("retry");
        }, e.reserveBackoffMs);
      }
    } finally {
      d.clear();
    }
  }

  roleOf(node: string): RelayView["role"] {
    return node === this.#choice.primary
      ? "primary"
      : node === this.#choice.standby
      ? "standby"
      : "candidate";
  }

  /** Relays to try when dialing through a relay: primary, standby, then alive others by RTT. */
  dialOrder(): { node: string; peerId: string }[] {
    const out: { node: string; peerId: string }[] = [];
    const push = (e?: RelayEntry) => {
      if (e?.peerId && !e.noHop && !out.some((o) => o.node === e.node)) {
        out.push({ node: e.node, peerId: e.peerId });
      }
    };
    const p = this.#relays.get(this.#choice.primary ?? "");
    const s = this.#relays.get(this.#choice.standby ?? "");
    if (p?.alive) push(p);
    if (s?.alive) push(s);
    const rest = [...this.#relays.values()].filter((e) => e.alive)
      .sort((a, b) => (a.rttMs ?? Infinity) - (b.rttMs ?? Infinity));
    for (const e of rest) push(e);
    // Relays believed dead come last: they may be back before we noticed.
    for (const e of this.#relays.values()) push(e);
    return out;
  }

  nodeOfPeer(peerId: string): string | undefined {
    for (const e of this.#relays.values()) if (e.peerId === peerId) return e.node;
    return undefined;
  }

  view(): RelayView[] {
    return [...this.#relays.values()].map((e) => ({
      node: e.node,
      role: this.roleOf(e.node),
      rttMs: e.rttMs === undefined ? null : Math.round(e.rttMs * 10) / 10,
      reserved: !e.noHop && !!e.peerId && this.host.hasReservation(e.peerId),
      ...(e.noHop
        ? { error: "does not offer relay service" }
        : e.lastError && !e.alive
        ? { error: e.lastError }
        : {}),
    }));
  }
}
