/**
 * DNS over TCP (RFC 7766): length-prefixed messages, several queries per connection answered
 * as they complete, an idle timeout, a bound on connections and on message size.
 */

import type { Logger } from "../log/mod.ts";
import type { QueryHandler } from "./handler.ts";
import type { DnsMetrics } from "./metrics.ts";
import { bindError } from "./udp_listener.ts";
import { writeAll } from "./upstream.ts";

export interface TcpSettings {
  maxConnections: number;
  idleTimeoutMs: number;
}

export class TcpListener {
  readonly port: number;
  #listener: Deno.TcpListener;
  #conns = new Set<Deno.TcpConn>();
  #tasks = new Set<Promise<void>>();
  #closed = false;

  constructor(
    readonly hostname: string,
    port: number,
    private readonly handler: QueryHandler,
    private readonly metrics: DnsMetrics,
    private readonly logger: Logger,
    private readonly settings: TcpSettings,
  ) {
    try {
      this.#listener = Deno.listen({ hostname, port, transport: "tcp" });
    } catch (err) {
      throw bindError(hostname, port, "tcp", err);
    }
    this.port = (this.#listener.addr as Deno.NetAddr).port;
  }

  get connections(): number {
    return this.#conns.size;
  }

  async serve(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closed || err instanceof Deno.errors.BadResource) break;
        this.logger.warn("TCP DNS accept failed", { error: err });
        continue;
      }
      if (this.#conns.size >= this.settings.maxConnections) {
        this.metrics.dropped.inc({ reason: "tcp_connection_limit" });
        conn.close();
        continue;
      }
      this.#conns.add(conn);
      this.metrics.tcpConnections.inc();
      const task = this.#serveConn(conn).finally(() => {
        this.#conns.delete(conn);
        this.metrics.tcpConnections.dec();
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
    await Promise.allSettled([...this.#tasks]);
  }

  async #serveConn(conn: Deno.TcpConn): Promise<void> {
    let closed = false;
    const closeConn = () => {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch (err) {
        if (!(err instanceof Deno.errors.BadResource)) throw err;
      }
    };
    const pending = new Set<Promise<void>>();
    let idle: ReturnType<typeof setTimeout> | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        if (pending.size === 0) closeConn();
        else armIdle();
      }, this.settings.idleTimeoutMs);
    };
    // Writes are serialised so answers never interleave.
    let writing: Promise<void> = Promise.resolve();
    const send = (resp: Uint8Array) => {
      const framed = new Uint8Array(resp.length + 2);
      framed[0] = resp.length >> 8;
      framed[1] = resp.length & 0xff;
      framed.set(resp, 2);
      writing = writing.then(() => closed ? undefined : writeAll(conn, framed)).catch(() =>
        closeConn()
      );
    };
    // Grows up to one whole message (2 + 65535 bytes) plus a read's worth.
    let buf = new Uint8Array(4096);
    let have = 0;
    armIdle();
    try {
      for (;;) {
        if (have === buf.length) {
          const bigger = new Uint8Array(Math.min(buf.length * 2, 65537 + 4096));
          bigger.set(buf);
          buf = bigger;
        }
        let n: number | null;
        try {
          n = await conn.read(buf.subarray(have));
        } catch (err) {
          if (
            closed || err instanceof Deno.errors.BadResource ||
            err instanceof Deno.errors.ConnectionReset
          ) break;
          throw err;
        }
        if (n === null) break;
        have += n;
        armIdle();
        let off = 0;
        while (have - off >= 2) {
          const len = (buf[off] << 8) | buf[off + 1];
          if (len < 12) {
            // Too short to be a DNS message: the stream is out of sync.
            this.metrics.dropped.inc({ reason: "tcp_bad_length" });
            closeConn();
            return;
          }
          if (have - off - 2 < len) break;
          const msg = buf.subarray(off + 2, off + 2 + len);
          off += 2 + len;
          const r = this.handler.handle(msg, "tcp");
          if (r instanceof Uint8Array) send(r);
          else if (r !== null) {
            const done: Promise<void> = r.then((resp) => {
              if (resp) send(resp);
            }).catch((err) => this.logger.warn("DNS query failed", { error: err }))
              .finally(() => pending.delete(done));
            pending.add(done);
          }
        }
        if (off > 0) {
          buf.copyWithin(0, off, have);
          have -= off;
        }
      }
      // The client finished sending: let outstanding answers go out, then close.
      await Promise.allSettled([...pending]);
      await writing;
    } catch (err) {
      this.logger.debug("TCP DNS connection failed", { error: err });
    } finally {
      clearTimeout(idle);
      closeConn();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch (err) {
        if (!(err instanceof Deno.errors.BadResource)) throw err;
      }
    }
  }
}
