/**
 * The query handler shared by every listener: parses a query, answers the cluster zone from
 * precomputed bytes (synchronously), hands everything else to the forwarder, applies the UDP
 * size limit, and counts.
 */

import type { Logger } from "../log/mod.ts";
import { followAlias } from "./alias.ts";
import { ResponseArena } from "./arena.ts";
import type { Forwarder } from "./forwarder.ts";
import { countKey, type DnsMetrics } from "./metrics.ts";
import type { ClusterZone } from "./zone.ts";
import {
  CLASS_ANY,
  CLASS_IN,
  isFailure,
  type ParsedQuery,
  parseQuery,
  RCODE,
  rcodeName,
  TYPE,
  typeName,
} from "./wire.ts";
import {
  emptyResponse,
  patchTemplate,
  spliceTemplate,
  truncateIfNeeded,
  udpLimit,
} from "./response.ts";

export type Transport = "udp" | "tcp";

/**
 * Answers one DNS message. `msg` is only valid during the synchronous part of the call (UDP
 * listeners reuse their receive buffer); null means "send nothing".
 */
export interface QueryHandler {
  handle(msg: Uint8Array, transport: Transport): Uint8Array | null | Promise<Uint8Array | null>;
}

export interface HandlerDeps {
  zone: ClusterZone;
  forwarder: Forwarder;
  metrics: DnsMetrics;
  logger: Logger;
}

export type Source = "cluster" | "cache" | "upstream" | "error";

export class DnsHandler implements QueryHandler {
  /** Query counts aggregated locally (label rendering is costly on the hot path); see flush(). */
  #counts = new Map<string, number>();
  #alloc = new ResponseArena().alloc;
  #observe: Record<Source, (seconds: number) => void>;

  constructor(
    private readonly deps: HandlerDeps,
    private readonly maxUdpPayload: number,
    /** Resolve ExternalName targets for A/AAAA/… queries (else answer the CNAME alone). */
    private readonly followAliases = true,
  ) {
    const h = deps.metrics.latency;
    this.#observe = {
      cluster: h.bind({ source: "cluster" }),
      cache: h.bind({ source: "cache" }),
      upstream: h.bind({ source: "upstream" }),
      error: h.bind({ source: "error" }),
    };
  }

  handle(msg: Uint8Array, transport: Transport): Uint8Array | null | Promise<Uint8Array | null> {
    const t0 = performance.now();
    const p = parseQuery(msg);
    if (isFailure(p)) {
      if (p.error === "drop") {
        this.deps.metrics.dropped.inc({ reason: "malformed" });
        return null;
      }
      const rcode = p.error === "formerr" ? RCODE.FORMERR : RCODE.NOTIMP;
      return this.#done(
        emptyResponse(msg, p.questionEnd, rcode, 0),
        "other",
        transport,
        "error",
        t0,
      );
    }
    const ours = this.maxUdpPayload;
    const qt = p.qtype;
    if (p.edns && p.ednsVersion !== 0) {
      // BADVERS (16): extended rcode 1 in the OPT, 0 in the header.
      const r = emptyResponse(msg, p.questionEnd, 0, 0, { udpSize: ours, extRcode: 1 });
      return this.#done(r, typeName(qt), transport, "error", t0);
    }
    if (
      (p.qclass !== CLASS_IN && p.qclass !== CLASS_ANY) || qt === TYPE.AXFR || qt === TYPE.IXFR ||
      qt === TYPE.OPT
    ) {
      const rcode = qt === TYPE.OPT ? RCODE.FORMERR : RCODE.NOTIMP;
      const r = emptyResponse(msg, p.questionEnd, rcode, 0, p.edns ? { udpSize: ours } : undefined);
      return this.#done(r, typeName(qt), transport, "error", t0);
    }
    const z = this.deps.zone.lookup(p.qname, qt);
    switch (z.kind) {
      case "template":
        if (z.chase && this.followAliases) {
          const query = msg.slice();
          const alias = patchTemplate(z.bytes, query, p, ours);
          return followAlias(z.chase, p, alias, this.deps.zone, this.deps.forwarder, ours)
            .catch((err) => {
              this.deps.logger.warn("cannot follow ExternalName alias", {
                target: z.chase,
                error: err,
              });
              return alias;
            })
            .then((r) => this.#finish(r, query, p, transport, "cluster", t0));
        }
        return this.#finish(patchTemplate(z.bytes, msg, p, ours), msg, p, transport, "cluster", t0);
      case "built":
        return this.#finish(patchTemplate(z.bytes, msg, p, ours), msg, p, transport, "cluster", t0);
      case "nxdomain":
        return this.#finish(
          spliceTemplate(this.deps.zone.nxdomainTail, msg, p, ours),
          msg,
          p,
          transport,
          "cluster",
          t0,
        );
      case "forward": {
        const hit = this.deps.forwarder.cached(msg, p, this.#alloc);
        if (hit) return this.#finish(hit, msg, p, transport, "cache", t0);
        const query = msg.slice();
        return this.deps.forwarder.resolve(query, p).then(
          (r) => this.#finish(r.bytes, query, p, transport, r.source, t0),
          (err) => {
            this.deps.logger.error("forwarding failed unexpectedly", { error: err });
            const r = emptyResponse(
              query,
              p.questionEnd,
              RCODE.SERVFAIL,
              0,
              p.edns ? { udpSize: ours } : undefined,
            );
            return this.#done(r, typeName(qt), transport, "error", t0);
          },
        );
      }
    }
  }

  #finish(
    resp: Uint8Array,
    query: Uint8Array,
    q: ParsedQuery,
    transport: Transport,
    source: Source,
    t0: number,
  ): Uint8Array {
    if (transport === "udp") {
      resp = truncateIfNeeded(resp, query, q, udpLimit(q, this.maxUdpPayload), this.maxUdpPayload);
    }
    return this.#done(resp, typeName(q.qtype), transport, source, t0);
  }

  #done(
    resp: Uint8Array,
    qtype: string,
    transport: Transport,
    source: Source,
    t0: number,
  ): Uint8Array {
    const key = countKey(qtype, rcodeName(resp[3] & 0xf), source, transport);
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    this.#observe[source]((performance.now() - t0) / 1000);
    return resp;
  }

  /** Adds queries counted elsewhere (the batched path's worker) under a `#done` key. */
  count(key: string, n: number): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + n);
  }

  /** Records a latency measured elsewhere. */
  observe(source: Source, seconds: number): void {
    this.#observe[source](seconds);
  }

  /** Moves locally aggregated counts into the registry. */
  flush(): void {
    for (const [key, n] of this.#counts) {
      const [qtype, rcode, source, protocol] = key.split("|");
      this.deps.metrics.queries.inc({ qtype, rcode, source, protocol }, n);
    }
    this.#counts.clear();
  }
}
