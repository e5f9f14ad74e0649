/**
 * Gossip of signed digests over HTTP: a round pushes our digest to a few peers, one after
 * the other, each time pulling the digests we miss (the request carries our summary: the
 * latest sequence number we hold per member). Serving is the mirror image.
 *
 * A peer not reachable directly (its last probe went through the tunnel, or the direct
 * exchange fails as unreachable) is exchanged with through the Dialer: the same request to
 * the same HTTP handler on its node, carried over a tunnel stream (see tunnel_http.ts).
 */

import type { Dialer } from "../contracts/mod.ts";
import type { Logger, LogRateLimiter } from "../log/mod.ts";
import { WireFormatError } from "./errors.ts";
import { bytesEqual } from "./identity.ts";
import type { DigestInbox } from "./inbox.ts";
import type { HealthMetrics } from "./metrics.ts";
import type { ProbePath } from "./prober.ts";
import { tunnelFetch } from "./tunnel_http.ts";
import {
  encodeExchange,
  packExchange,
  TYPE_EXCHANGE,
  TYPE_EXCHANGE_REPLY,
  unpackExchange,
} from "./wire.ts";

export const EXCHANGE_PATH = "/v1/exchange";
const MAX_BODY = 32 * 1024 * 1024;

export interface PeerAddress {
  hostname: string;
  port: number;
}

export interface ExchangePeer {
  node: string;
  addr: PeerAddress;
  /**
   * "direct": HTTP to `addr`, through the tunnel if that fails as unreachable; "tunnel": the
   * tunnel only (the peer was last reached that way).
   */
  path: ProbePath;
}

export interface GossipDeps {
  inbox: DigestInbox;
  /** Fallback to peers not reachable directly; without it, exchanges are direct only. */
  dialer?: Dialer;
  metrics: HealthMetrics;
  log: Logger;
  limiter: LogRateLimiter;
  /** Called after digests were accepted (to schedule a vote). */
  onAccepted: () => void;
}

export class Gossip {
  #client?: Deno.HttpClient;

  constructor(private readonly deps: GossipDeps) {}

  /** Opens the HTTP client used for exchanges. */
  open(): void {
    this.#client ??= Deno.createHttpClient({});
  }

  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  /** Accepts digests; returns how many were new. */
  async acceptAll(digests: Uint8Array[]): Promise<number> {
    const { inbox, metrics, log, limiter } = this.deps;
    let accepted = 0;
    for (const raw of digests) {
      const r = await inbox.accept(raw);
      if (r.ok) {
        accepted++;
        metrics.digests.inc({ result: "accepted" });
        continue;
      }
      metrics.digests.inc({ result: r.reason });
      // Replays are the normal redundancy of gossip; the others deserve a (rate-limited) line.
      if (r.reason !== "replay" && limiter.allow(`reject:${r.reason}`) !== undefined) {
        log.warn("health digest rejected", { reason: r.reason, detail: r.detail });
      }
    }
    if (accepted) this.deps.onAccepted();
    return accepted;
  }

  /** Serves `POST /v1/exchange`. */
  async serve(req: Request): Promise<Response> {
    const { inbox, metrics } = this.deps;
    if (Number(req.headers.get("content-length") ?? "0") > MAX_BODY) {
      return new Response("too large", { status: 413 });
    }
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length > MAX_BODY) return new Response("too large", { status: 413 });
    metrics.bytes.inc({ direction: "received" }, body.length);
    let x;
    try {
      x = await unpackExchange(body, MAX_BODY);
    } catch (err) {
      if (!(err instanceof WireFormatError)) throw err;
      metrics.digests.inc({ result: "malformed" });
      return new Response(err.message, { status: 400 });
    }
    const hash = inbox.groupHash;
    if (x.type !== TYPE_EXCHANGE || !hash || !bytesEqual(hash, x.groupHash)) {
      metrics.digests.inc({ result: "other-group" }, x.digests.length);
      return new Response("other group", { status: 409 });
    }
    await this.acceptAll(x.digests);
    const reply = await packExchange(encodeExchange({
      type: TYPE_EXCHANGE_REPLY,
      groupHash: hash,
      summary: inbox.summary(),
      digests: inbox.newerThan(x.summary),
    }));
    metrics.bytes.inc({ direction: "sent" }, reply.length);
    return new Response(reply as BodyInit, {
      headers: { "content-type": "application/octet-stream" },
    });
  }

  /**
   * Exchanges with `peers` in order until `budgetMs` is spent or `current()` turns false
   * (regrouped). Each attempt (direct, tunnel) is bounded by `timeoutMs` and `signal`.
   */
  async exchange(
    peers: ExchangePeer[],
    own: Uint8Array,
    opts: {
      hash: Uint8Array;
      timeoutMs: number;
      budgetMs: number;
      signal: AbortSignal;
      current: () => boolean;
    },
  ): Promise<void> {
    const { inbox, metrics, dialer } = this.deps;
    const end = performance.now() + opts.budgetMs;
    for (const peer of peers) {
      if (opts.signal.aborted || !opts.current() || performance.now() > end) return;
      const req = await packExchange(
        encodeExchange({
          type: TYPE_EXCHANGE,
          groupHash: opts.hash,
          summary: inbox.summary(),
          digests: [own],
        }),
      );
      let path: ProbePath = peer.path === "tunnel" && dialer ? "tunnel" : "direct";
      let res = await this.#attempt(path, peer, req, opts);
      if (res === "unreachable" && path === "direct" && dialer && !opts.signal.aborted) {
        path = "tunnel";
        res = await this.#attempt(path, peer, req, opts);
      }
      if (opts.signal.aborted) return;
      if (res === "unreachable") continue;
      metrics.bytes.inc({ direction: "sent" }, req.length);
      metrics.bytes.inc({ direction: "received" }, res.body.length);
      if (res.status < 200 || res.status > 299) {
        metrics.exchanges.inc({ result: res.status === 409 ? "other-group" : "refused", path });
        continue;
      }
      let x;
      try {
        x = await unpackExchange(res.body, MAX_BODY);
      } catch (err) {
        if (!(err instanceof WireFormatError)) throw err;
        metrics.exchanges.inc({ result: "malformed", path });
        continue;
      }
      metrics.exchanges.inc({ result: "ok", path });
      if (x.type === TYPE_EXCHANGE_REPLY && bytesEqual(x.groupHash, opts.hash)) {
        await this.acceptAll(x.digests);
      }
    }
  }

  /**
   * One POST of `req` to `peer` by `path`; "unreachable" when no answer came (counted and
   * logged here). Any network failure of one peer is contained.
   */
  async #attempt(
    path: ProbePath,
    peer: ExchangePeer,
    req: Uint8Array,
    opts: { timeoutMs: number; signal: AbortSignal },
  ): Promise<{ status: number; body: Uint8Array } | "unreachable"> {
    const { metrics, log, limiter, dialer } = this.deps;
    try {
      if (path === "tunnel" && dialer) {
        return await tunnelFetch(dialer, { node: peer.node, ...peer.addr }, {
          method: "POST",
          path: EXCHANGE_PATH,
          body: req,
        }, { timeoutMs: opts.timeoutMs, maxBody: MAX_BODY, signal: opts.signal });
      }
      const res = await fetch(`http://${hostPort(peer.addr)}${EXCHANGE_PATH}`, {
        method: "POST",
        body: req as BodyInit,
        headers: { "content-type": "application/octet-stream" },
        signal: AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]),
        client: this.#client,
      });
      return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
    } catch (err) {
      if (opts.signal.aborted) return "unreachable";
      metrics.exchanges.inc({ result: "unreachable", path });
      if (limiter.allow(`exchange:${path}:${peer.node}`) !== undefined) {
        log.debug("exchange failed", { node: peer.node, path, error: err });
      }
      return "unreachable";
    }
  }
}

function hostPort(a: PeerAddress): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}
