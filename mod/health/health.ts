/**
 * The Health service: probes the members of its group, shares signed verdict digests with a
 * bounded fan-out (push our own, pull what we miss), votes, exposes the result as a
 * HealthView, and — when it is the group's one writer — annotates Nodes through the API.
 */

import type { HealthView, Verdict } from "../contracts/mod.ts";
import type { Service, ServiceState } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import { LogRateLimiter } from "../log/mod.ts";
import { HealthStartError } from "./errors.ts";
import type { HealthClock, HealthDeps, HealthStatus, MemberStatus } from "./health_types.ts";
import { EXCHANGE_PATH, type ExchangePeer, Gossip, type PeerAddress } from "./gossip.ts";
import {
  cloudReady,
  type Group,
  groupHash,
  groupOf,
  HEALTH_CONFIG_NAMESPACE,
  internalIP,
  readGroupConfig,
} from "./groups.ts";
import { bytesEqual } from "./identity.ts";
import { DigestInbox } from "./inbox.ts";
import { KeyPins } from "./key_pins.ts";
import { type HealthMetrics, healthMetrics } from "./metrics.ts";
import {
  effectiveFanout,
  type HealthOptions,
  type ResolvedHealthOptions,
  resolveHealthOptions,
} from "./options.ts";
import { HEALTHZ_PATH, probeMany, type ProbeOutcome, type ProbeTarget } from "./prober.ts";
import { AnnotationPublisher } from "./publisher.ts";
import { cloudEffect, FAIL, majorityOf, type MemberDecision, OK, vote, writerOf } from "./vote.ts";
import { encodeDigestBody, withSignature } from "./wire.ts";

export type { HealthClock, HealthDeps, HealthStatus, MemberStatus, PeerAddress };

type Listener = (node: string, verdict: Verdict) => void;

export class Health implements Service, HealthView {
  readonly name = "health";
  readonly options: ResolvedHealthOptions;
  #deps: HealthDeps;
  #log: Logger;
  #m: HealthMetrics;
  #now: () => number;
  #random: () => number;
  #limiter: LogRateLimiter;
  #state: ServiceState = "stopped";
  #detail = "not started";
  #abort = new AbortController();
  #server?: Deno.HttpServer<Deno.NetAddr>;
  #port = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #decideTimer?: ReturnType<typeof setTimeout>;
  #round?: Promise<void>;
  #regrouping: Promise<void> = Promise.resolve();
  #regroupQueued = false;
  #unsubscribe: (() => void)[] = [];
  #group?: Group;
  #hash?: Uint8Array;
  #pins: KeyPins;
  #inbox: DigestInbox;
  #gossip: Gossip;
  #publisher: AnnotationPublisher;
  #seq = 0;
  #decisions = new Map<string, MemberDecision>();
  #freshHealthy: string[] = [];
  #lastProbe = new Map<string, ProbeOutcome>();
  #listeners = new Set<Listener>();
  #stopping?: Promise<void>;

  constructor(deps: HealthDeps, options: HealthOptions) {
    this.options = resolveHealthOptions(options);
    this.#deps = deps;
    this.#log = deps.logger.child("health");
    this.#m = healthMetrics(deps.metrics);
    const clock = deps.clock ?? { now: Date.now };
    this.#now = () => clock.now();
    this.#random = deps.random ?? Math.random;
    this.#limiter = new LogRateLimiter(5, 10_000);
    this.#pins = new KeyPins(this.options.stateDir);
    this.#inbox = new DigestInbox(
      { pins: this.#pins, peerKey: deps.peerKey, now: this.#now },
      { voteTimeoutMs: this.options.voteTimeoutMs },
    );
    const parts = { metrics: this.#m, log: this.#log, limiter: this.#limiter };
    this.#gossip = new Gossip({
      ...parts,
      inbox: this.#inbox,
      dialer: deps.dialer,
      onAccepted: () => this.#scheduleDecide(),
    });
    this.#publisher = new AnnotationPublisher(
      { ...parts, writer: deps.writer, store: deps.store, now: this.#now },
      {
        voteTimeoutMs: this.options.voteTimeoutMs,
        annotationRefreshMs: this.options.annotationRefreshMs,
      },
    );
  }

  /** The bound port (useful with listenPort 0). */
  get port(): number {
    return this.#port;
  }

  // ---- HealthView ----

  verdict(node: string): Verdict {
    return this.#decisions.get(node)?.verdict ?? "unknown";
  }

  onChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ---- Service ----

  async start(signal: AbortSignal): Promise<void> {
    if (this.#state !== "stopped" && this.#state !== "failed") {
      throw new HealthStartError("state", this.#state);
    }
    this.#state = "starting";
    this.#detail = "starting";
    this.#abort = new AbortController();
    const onAbort = () => this.#abort.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    this.#unsubscribe.push(() => signal.removeEventListener("abort", onAbort));
    try {
      signal.throwIfAborted();
      await this.#pins.load();
      const store = this.#deps.store;
      this.#unsubscribe.push(store.on("batch", ({ kinds }) => {
        if (kinds.has("nodes") || kinds.has("configmaps")) this.#queueRegroup();
      }));
      this.#queueRegroup();
      await this.#regrouping;
      await this.#listen();
      this.#gossip.open();
    } catch (err) {
      await this.#shutdown();
      this.#state = "failed";
      this.#detail = err instanceof Error ? err.message : String(err);
      throw err;
    }
    this.#state = "ready";
    this.#updateDetail();
    this.#schedule(0);
  }

  stop(): Promise<void> {
    if (this.#state === "stopped" && !this.#server) return Promise.resolve();
    this.#stopping ??= (async () => {
      this.#state = "stopping";
      await this.#shutdown();
      this.#state = "stopped";
      this.#detail = "stopped";
      this.#stopping = undefined;
    })();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    this.#abort.abort();
    clearTimeout(this.#timer);
    clearTimeout(this.#decideTimer);
    this.#timer = this.#decideTimer = undefined;
    for (const u of this.#unsubscribe.splice(0)) u();
    await this.#round?.catch(() => {});
    await this.#regrouping;
    await this.#publisher.drain();
    if (this.#server) {
      await this.#server.shutdown();
      this.#server = undefined;
    }
    this.#gossip.close();
    try {
      await this.#pins.flush();
    } catch (err) {
      this.#log.error("cannot save pinned peer keys", { error: err });
    }
  }

  status(): HealthStatus {
    const g = this.#group;
    const members: MemberStatus[] = (g?.members ?? []).map((node) => {
      const d = this.#decisions.get(node);
      const ready = cloudReady(this.#deps.store.get("nodes", undefined, node)) ?? null;
      const p = this.#lastProbe.get(node);
      const verdict = d?.verdict ?? "unknown";
      return {
        node,
        verdict,
        healthy: d?.healthy ?? 0,
        unhealthy: d?.unhealthy ?? 0,
        decidedAt: d?.decidedAt !== undefined ? new Date(d.decidedAt).toISOString() : null,
        cloudReady: ready,
        effect: cloudEffect(verdict, ready ?? undefined),
        probe: node === this.options.nodeName ? "ok" : p ? (p.ok ? "ok" : "fail") : null,
        probePath: node === this.options.nodeName ? null : p?.path ?? null,
      };
    });
    return {
      state: this.#state,
      detail: this.#detail,
      group: g?.name ?? "",
      members,
      writer: writerOf(this.#freshHealthy) ?? null,
    };
  }

  #updateDetail(): void {
    if (this.#state !== "ready" && this.#state !== "degraded") return;
    const g = this.#group;
    this.#detail = g
      ? `probing ${g.members.length - 1} peers of group "${g.name}" on port ${this.#port}`
      : `node "${this.options.nodeName}" is in no checked group; serving probes on port ${this.#port}`;
  }

  #emit(node: string, verdict: Verdict): void {
    for (const l of [...this.#listeners]) {
      try {
        l(node, verdict);
      } catch (err) {
        this.#log.error("health change listener failed", { node, error: err });
      }
    }
  }

  // ---- groups ----

  /** Queues a regroup; bursts of store changes (node heartbeats) coalesce into one. */
  #queueRegroup(): void {
    if (this.#regroupQueued) return;
    this.#regroupQueued = true;
    this.#regrouping = this.#regrouping.then(() => {
      this.#regroupQueued = false;
      return this.#regroup();
    }).catch((err) => {
      this.#log.error("regrouping failed", { error: err });
    });
  }

  async #regroup(): Promise<void> {
    const store = this.#deps.store;
    const cfg = readGroupConfig(store, this.#deps.configNamespace ?? HEALTH_CONFIG_NAMESPACE);
    const g = groupOf(this.options.nodeName, store.list("nodes"), cfg);
    const old = this.#group;
    if (old?.name === g?.name && old?.members.join("\n") === g?.members.join("\n")) return;
    const hash = g ? await groupHash(g) : undefined;
    if (this.#hash && hash && bytesEqual(this.#hash, hash)) return;
    this.#group = g;
    this.#hash = hash;
    this.#inbox.setGroup(g, hash);
    for (const n of [...this.#lastProbe.keys()]) {
      if (!g?.members.includes(n)) this.#lastProbe.delete(n);
    }
    this.#log.info("group changed", { group: g?.name ?? null, members: g?.members.length ?? 0 });
    this.#updateDetail();
    this.#decide();
  }

  // ---- HTTP server ----

  #listen(): Promise<void> {
    const { listenAddress, listenPort } = this.options;
    return new Promise<void>((resolve, reject) => {
      try {
        this.#server = Deno.serve({
          hostname: listenAddress,
          port: listenPort,
          signal: this.#abort.signal,
          onListen: (addr) => {
            this.#port = addr.port;
            resolve();
          },
          onError: (err) => {
            this.#log.warn("health request failed", { error: err });
            return new Response("internal error", { status: 500 });
          },
        }, (req) => this.#handle(req));
      } catch (err) {
        reject(new HealthStartError("listener", `${listenAddress}:${listenPort}`, { cause: err }));
      }
    });
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (req.method === "GET" && url.pathname === HEALTHZ_PATH) {
      return Response.json({ node: this.options.nodeName });
    }
    if (req.method === "GET" && url.pathname === "/v1/status") return Response.json(this.status());
    if (req.method === "POST" && url.pathname === EXCHANGE_PATH) {
      return await this.#gossip.serve(req);
    }
    return new Response("not found", { status: 404 });
  }

  // ---- rounds ----

  #schedule(delay: number): void {
    if (this.#abort.signal.aborted) return;
    this.#timer = setTimeout(() => {
      const t0 = performance.now();
      this.#round = this.#runRound()
        .catch((err) => {
          if (!this.#abort.signal.aborted) this.#log.error("health round failed", { error: err });
        })
        .finally(() => {
          const ms = performance.now() - t0;
          this.#m.roundSeconds.observe(ms / 1000);
          this.#schedule(Math.max(0, this.options.probeIntervalMs - ms));
        });
    }, delay);
  }

  #address(node: string): PeerAddress | undefined {
    if (this.#deps.resolveAddress) return this.#deps.resolveAddress(node);
    const ip = internalIP(this.#deps.store.get("nodes", undefined, node));
    return ip ? { hostname: ip, port: this.options.listenPort } : undefined;
  }

  async #runRound(): Promise<void> {
    const g = this.#group;
    const hash = this.#hash;
    const signal = this.#abort.signal;
    if (!g || !hash) return this.#decide();
    const self = this.options.nodeName;
    const n = g.members.length;
    const states = new Uint8Array(n);
    const observedAt = new Float64Array(n);
    const others: number[] = [];
    for (let i = 0; i < n; i++) {
      if (g.members[i] === self) {
        states[i] = OK;
        observedAt[i] = this.#now();
      } else others.push(i);
    }
    // Probe everyone (bounded concurrency).
    const index = new Map(g.members.map((m, i) => [m, i]));
    const targets: ProbeTarget[] = [];
    const { probeTimeoutMs: timeoutMs, probeRetries: retries, probeConcurrency: concurrency } =
      this.options;
    const dialer = this.#deps.dialer;
    for (const i of others) {
      const addr = this.#address(g.members[i]);
      if (!addr) continue;
      // A member last missed directly gets one direct attempt, then the tunnel the retries.
      const last = this.#lastProbe.get(g.members[i]);
      const directRetries = dialer && last && !(last.ok && last.path === "direct") ? 0 : retries;
      targets.push({
        node: g.members[i],
        ...addr,
        kubeletPort: this.options.kubeletPort,
        directRetries,
      });
    }
    await probeMany(targets, { timeoutMs, retries, concurrency, signal, dialer }, (t, out, ms) => {
      this.#m.probeSeconds.observe(ms / 1000);
      this.#m.probes.inc({ result: out.ok ? "ok" : "fail", path: out.path });
      const i = index.get(t.node)!;
      states[i] = out.ok ? OK : FAIL;
      observedAt[i] = this.#now();
      const before = this.#lastProbe.get(t.node);
      if (
        (before?.ok !== out.ok || (out.ok && before?.path !== out.path)) &&
        this.#limiter.allow(`probe:${t.node}`) !== undefined
      ) {
        this.#log.info(out.ok ? "peer answers probes" : "peer fails probes", {
          node: t.node,
          path: out.path,
          error: out.error,
        });
      }
      this.#lastProbe.set(t.node, out);
    });
    signal.throwIfAborted();
    if (this.#group !== g) return; // regrouped meanwhile: the next round starts over

    this.#seq = Math.max(this.#seq + 1, Math.floor(this.#now()) * 1000);
    const body = encodeDigestBody({
      from: self,
      group: g.name,
      seq: this.#seq,
      ts: this.#now(),
      groupHash: hash,
      states,
      observedAt,
      publicKey: this.#deps.identity.publicKey,
    });
    const own = withSignature(body, await this.#deps.identity.sign(body));
    if (this.#group !== g) return;
    this.#inbox.acceptOwn(own);
    this.#decide();
    await this.#exchange(g, hash, own, others);
    this.#decide();
  }

  /**
   * Pushes our digest to `fanout` peers that answered probes, pulling what we miss; each by
   * the path its probe took (direct falls back to the tunnel when it fails).
   */
  async #exchange(g: Group, hash: Uint8Array, own: Uint8Array, others: number[]): Promise<void> {
    const fanout = effectiveFanout(g.members.length, this.options.fanout);
    const peers: ExchangePeer[] = [];
    for (
      const i of this.#sample(others.filter((i) => this.#lastProbe.get(g.members[i])?.ok), fanout)
    ) {
      const addr = this.#address(g.members[i]);
      const path = this.#lastProbe.get(g.members[i])?.path ?? "direct";
      if (addr) peers.push({ node: g.members[i], addr, path });
    }
    await this.#gossip.exchange(peers, own, {
      hash,
      timeoutMs: this.options.probeTimeoutMs,
      budgetMs: this.options.probeIntervalMs / 2,
      signal: this.#abort.signal,
      current: () => this.#group === g,
    });
  }

  #sample(from: number[], k: number): number[] {
    const a = [...from];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, k);
  }

  // ---- vote and effects ----

  #scheduleDecide(): void {
    if (this.#decideTimer !== undefined || this.#abort.signal.aborted) return;
    this.#decideTimer = setTimeout(() => {
      this.#decideTimer = undefined;
      this.#decide();
    }, Math.min(50, this.options.probeIntervalMs / 4));
  }

  /**
   * Whether our latest probes reach a strict majority of the group, ourselves included. For
   * up to voteTimeout after a split, verdicts from before it are still fresh: a node cut off
   * with a minority can then find itself the lowest-named member a majority votes healthy
   * (the majority's own votes about themselves expiring first) and would overwrite the
   * majority's annotations. A node that cannot see a majority writes nothing.
   */
  #seesMajority(g: Group): boolean {
    let seen = 0;
    for (const m of g.members) {
      if (m === this.options.nodeName || this.#lastProbe.get(m)?.ok) seen++;
    }
    return seen >= majorityOf(g.members.length);
  }

  #decide(): void {
    const g = this.#group;
    const res = vote({
      members: g?.members ?? [],
      rows: this.#inbox.rows(),
      now: this.#now(),
      voteTimeoutMs: this.options.voteTimeoutMs,
      previous: this.#decisions,
    });
    this.#decisions = res.decisions;
    this.#freshHealthy = res.freshHealthy;
    const counts = { healthy: 0, unhealthy: 0, unknown: 0 };
    for (const d of res.decisions.values()) counts[d.verdict]++;
    for (const [v, c] of Object.entries(counts)) this.#m.members.set(c, { verdict: v });
    for (const node of res.changed) {
      const v = this.verdict(node);
      this.#m.decisions.inc({ verdict: v });
      this.#log.info("verdict changed", { node, verdict: v, group: g?.name ?? null });
      this.#emit(node, v);
    }
    const isWriter = !!g && writerOf(res.freshHealthy) === this.options.nodeName &&
      this.#seesMajority(g);
    this.#m.writer.set(isWriter ? 1 : 0);
    if (isWriter) this.#publisher.publish(g!, res.decisions, this.#abort.signal);
  }
}
