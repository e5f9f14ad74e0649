/**
 * Gossip of signed digests over HTTP: a round pushes our digest to a few peers, one after
 * the other, each time pulling the digests we miss (the request carries our summary: the
 * latest sequence number we hold per member). Serving is the mirror image.
 */

import type { Logger, LogRateLimiter } from "../log/mod.ts";
import { WireFormatError } from "./errors.ts";
import { bytesEqual } from "./identity.ts";
import type { DigestInbox } from "./inbox.ts";
import type { HealthMetrics } from "./metrics.ts";
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

export interface GossipDeps {
  inbox: DigestInbox;
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
   * (regrouped). Each exchange is bounded by `timeoutMs` and `signal`.
   */
  async exchange(
    peers: { node: string; addr: PeerAddress }[],
    own: Uint8Array,
    opts: {
      hash: Uint8Array;
      timeoutMs: number;
      budgetMs: number;
      signal: AbortSignal;
      current: () => boolean;
    },
  ): Promise<void> {
    const { inbox, metrics, log, limiter } = this.deps;
    const end = performance.now() + opts.budgetMs;
    for (const { node, addr } of peers) {
      if (opts.signal.aborted || !opts.current() || performance.now() > end) return;
      const req = await packExchange(
        encodeExchange({
          type: TYPE_EXCHANGE,
          groupHash: opts.hash,
          summary: inbox.summary(),
          digests: [own],
        }),
      );
      let reply: Uint8Array;
      try {
        const res = await fetch(`http://${hostPort(addr)}${EXCHANGE_PATH}`, {
          method: "POST",
          body: req as BodyInit,
          headers: { "content-type": "application/octet-stream" },
          signal: AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]),
          client: this.#client,
        });
        metrics.bytes.inc({ direction: "sent" }, req.length);
        reply = new Uint8Array(await res.arrayBuffer());
        metrics.bytes.inc({ direction: "received" }, reply.length);
        if (!res.ok) {
          metrics.exchanges.inc({ result: res.status === 409 ? "other-group" : "refused" });
          continue;
        }
      } catch (err) {
        // Any network failure of one peer is contained: count it and go on with the next.
        if (opts.signal.aborted) return;
        metrics.exchanges.inc({ result: "unreachable" });
        if (limiter.allow(`exchange:${node}`) !== undefined) {
          log.debug("exchange failed", { node, error: err });
        }
        continue;
      }
      let x;
      try {
        x = await unpackExchange(reply, MAX_BODY);
      } catch (err) {
        if (!(err instanceof WireFormatError)) throw err;
        metrics.exchanges.inc({ result: "malformed" });
        continue;
      }
      metrics.exchanges.inc({ result: "ok" });
      if (x.type === TYPE_EXCHANGE_REPLY && bytesEqual(x.groupHash, opts.hash)) {
        await this.acceptAll(x.digests);
      }
    }
  }
}

function hostPort(a: PeerAddress): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}
