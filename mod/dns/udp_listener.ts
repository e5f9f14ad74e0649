/**
 * The portable UDP listener: `Deno.listenDatagram` with one reused receive buffer; cluster
 * answers are produced synchronously between two receives, forwarded ones when they arrive.
 */

import type { Logger } from "../log/mod.ts";
import { LogRateLimiter } from "../log/mod.ts";
import { DnsBindError } from "./errors.ts";
import type { QueryHandler } from "./handler.ts";
import type { DnsMetrics } from "./metrics.ts";

/** How UDP queries are received; every implementation passes the same conformance suite. */
export type UdpPath = "portable" | "batched";

export interface UdpListener {
  readonly path: UdpPath;
  readonly hostname: string;
  readonly port: number;
  /** Runs the receive loop until close(). */
  serve(): Promise<void>;
  /** Resolves once queries are being received (after serve() was called). */
  ready(): Promise<void>;
  close(): void;
}

export function bindError(
  hostname: string,
  port: number,
  transport: "udp" | "tcp",
  err: unknown,
): DnsBindError {
  const reason = err instanceof Deno.errors.AddrInUse
    ? "address already in use"
    : err instanceof Deno.errors.AddrNotAvailable
    ? "address not available on this host (set modules.edgeDNS.listenAddress to an address of this host)"
    : err instanceof Deno.errors.PermissionDenied
    ? "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    : err instanceof Error
    ? err.message
    : String(err);
  return new DnsBindError(hostname, port, transport, reason, { cause: err });
}

export class PortableUdpListener implements UdpListener {
  readonly path = "portable";
  readonly port: number;
  #conn: Deno.DatagramConn;
  #closed = false;
  #warn = new LogRateLimiter(3, 10_000);

  constructor(
    readonly hostname: string,
    port: number,
    private readonly handler: QueryHandler,
    private readonly metrics: DnsMetrics,
    private readonly logger: Logger,
  ) {
    try {
      this.#conn = Deno.listenDatagram({ hostname, port, transport: "udp" });
    } catch (err) {
      throw bindError(hostname, port, "udp", err);
    }
    this.port = (this.#conn.addr as Deno.NetAddr).port;
  }

  async serve(): Promise<void> {
    const buf = new Uint8Array(65535);
    const conn = this.#conn;
    const onSendError = (err: unknown) => this.#sendFailed(err);
    while (!this.#closed) {
      let msg: Uint8Array;
      let addr: Deno.Addr;
      try {
        [msg, addr] = await conn.receive(buf);
      } catch (err) {
        if (
          this.#closed || err instanceof Deno.errors.BadResource ||
          err instanceof Deno.errors.Interrupted
        ) return;
        this.#sendFailed(err);
        continue;
      }
      const r = this.handler.handle(msg, "udp");
      if (r === null) continue;
      if (r instanceof Uint8Array) {
        conn.send(r, addr).catch(onSendError);
      } else {
        r.then((resp) => {
          if (resp && !this.#closed) return conn.send(resp, addr);
        }).catch(onSendError);
      }
    }
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  #sendFailed(err: unknown): void {
    if (this.#closed) return;
    this.metrics.dropped.inc({ reason: "udp_error" });
    const suppressed = this.#warn.allow("udp");
    if (suppressed !== undefined) {
      this.logger.warn("UDP DNS socket error", {
        listener: `${this.hostname}:${this.port}`,
        error: err,
        suppressed,
      });
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }
}
