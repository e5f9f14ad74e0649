/** The TCP listener of one service port: accept, pick an endpoint, connect (with retries), relay. */

import { DialError } from "../contracts/mod.ts";
import type { Picked, PickRequest } from "../lb/mod.ts";
import type { Connected } from "./connector.ts";
import type { ProxyContext } from "./context.ts";
import { ConnDuplex } from "./duplex.ts";
import { HttpHeadError } from "./errors.ts";
import { httpSession } from "./http_session.ts";
import { pickRequestFor, readRequestHead } from "./http_head.ts";
import type { PortState } from "./port_state.ts";
import { isConnectionError, relay } from "./relay.ts";
import type { ProxyEndpoint } from "./service_table.ts";
import { readClientHello } from "./tls_sni.ts";

const HEAD_TIMEOUT_MS = 10_000;
const HEAD_MAX_BYTES = 65536;

/** The per-port metric series, with labels rendered once (the connection path is hot). */
class PortMetrics {
  readonly total: () => void;
  readonly active: (by: number) => void;
  readonly onBytes: (direction: "tx" | "rx", n: number) => void;
  readonly #picks = new Map<string, () => void>();

  constructor(private readonly ctx: ProxyContext, private readonly labels: PortState["labels"]) {
    const m = ctx.metrics;
    this.total = m.total.bind(labels);
    this.active = m.active.bind(labels);
    const tx = m.bytes.bind({ ...labels, direction: "tx" });
    const rx = m.bytes.bind({ ...labels, direction: "rx" });
    this.onBytes = (direction, n) => direction === "tx" ? tx(n) : rx(n);
  }

  pick(endpoint: string, path: string): void {
    const key = `${path} ${endpoint}`;
    let inc = this.#picks.get(key);
    if (!inc) {
      inc = this.ctx.metrics.picks.bind({ ...this.labels, endpoint, path });
      this.#picks.set(key, inc);
    }
    inc();
  }
}

export class TcpPortListener {
  #serving?: Promise<void>;
  #closed = false;
  #metrics: PortMetrics;

  private constructor(
    readonly listener: Deno.TcpListener,
    public state: PortState,
    private readonly ctx: ProxyContext,
  ) {
    this.#metrics = new PortMetrics(ctx, state.labels);
  }

  static open(hostname: string, state: PortState, ctx: ProxyContext): TcpPortListener {
    const l = Deno.listen({ hostname, port: 0, transport: "tcp" });
    const t = new TcpPortListener(l, state, ctx);
    t.#serving = t.#accept();
    return t;
  }

  get port(): number {
    return this.listener.addr.port;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.listener.accept();
      } catch (err) {
        if (this.#closed || err instanceof Deno.errors.BadResource) return;
        if (isConnectionError(err)) continue;
        throw err;
      }
      this.#handle(conn).catch((err) => {
        this.ctx.log.error("proxy connection failed", { ...this.state.labels, error: err });
      });
    }
  }

  /** Stops accepting; open connections are ended by the context's drain. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.listener.close();
    await this.#serving;
  }

  async #handle(conn: Deno.TcpConn): Promise<void> {
    const ctx = this.ctx;
    const state = this.state;
    const labels = state.labels;
    const pm = this.#metrics;
    const client = new ConnDuplex(conn);
    ctx.track(client);
    pm.total();
    pm.active(1);
    try {
      if (!state.hasEndpoints()) {
        ctx.metrics.connectErrors.inc({ ...labels, reason: "no_endpoints" });
        return;
      }
      conn.setNoDelay(true);
      const clientIp = (conn.remoteAddr as Deno.NetAddr).hostname;
      let request: PickRequest = { clientIp };
      let prefix: Uint8Array | undefined;
      if (state.balancer.needs === "http") {
        const buf = new Uint8Array(HEAD_MAX_BYTES);
        if (state.entry.kind === "tls") {
          const hello = await readClientHello(client, buf, HEAD_TIMEOUT_MS);
          prefix = hello.bytes;
          const sni = hello.sni;
          request = {
            clientIp,
            header: (n) => (n === "host" || n === ":authority" ? sni : undefined),
          };
        } else {
          const r = await readRequestHead(client, buf, HEAD_TIMEOUT_MS);
          prefix = r.bytes;
          if (r.head && state.balancer.perRequest) {
            await httpSession(client, prefix, {
              // Its readers hold a head at most; bulk bodies do not need the relay's size.
              bufferBytes: HEAD_MAX_BYTES,
              idleTimeoutMs: ctx.options.tcpIdleTimeoutMs,
              signal: ctx.signal,
              clientIp,
              connect: (req, existing) => this.#connect(req, existing),
              onBytes: pm.onBytes,
              now: ctx.now,
            });
            return;
          }
          if (r.head) request = pickRequestFor(r.head, clientIp);
        }
      }
      const up = await this.#connect(request);
      if (!up) return;
      const [picked, connected] = up;
      try {
        if (prefix && prefix.length > 0) {
          await connected.duplex.write(prefix);
          pm.onBytes("tx", prefix.length);
        }
        await relay(client, connected.duplex, {
          bufferBytes: ctx.options.relayBufferBytes,
          buffers: ctx.buffers,
          idleTimeoutMs: ctx.options.tcpIdleTimeoutMs,
          signal: ctx.signal,
          onBytes: pm.onBytes,
          now: ctx.now,
        });
      } finally {
        picked.release();
        connected.duplex.close();
      }
    } catch (err) {
      if (err instanceof HttpHeadError) {
        ctx.metrics.connectErrors.inc({ ...labels, reason: `http_${err.reason}` });
      } else if (!isConnectionError(err)) throw err;
    } finally {
      client.close();
      pm.active(-1);
      ctx.untrack(client);
    }
  }

  /** Tries up to `maxConnectAttempts` endpoints; a retryable failure marks the endpoint down. */
  async #connect(
    request: PickRequest,
    existing?: (id: string) => Connected | undefined,
  ): Promise<[Picked<ProxyEndpoint>, Connected] | undefined> {
    const { ctx, state } = this;
    const labels = state.labels;
    const tried = new Set<string>();
    for (let attempt = 0; attempt < ctx.options.maxConnectAttempts; attempt++) {
      const picked = state.pick(request, tried);
      if (!picked) {
        if (attempt === 0) ctx.metrics.connectErrors.inc({ ...labels, reason: "no_endpoints" });
        return undefined;
      }
      const ep = picked.endpoint;
      const reuse = existing?.(ep.id);
      if (reuse) return [picked, reuse];
      try {
        const c = await ctx.connector.connectTcp(ep, ctx.signal);
        state.markSuccess(ep.id);
        this.#metrics.pick(ep.id, c.path);
        return [picked, c];
      } catch (err) {
        picked.release();
        if (!(err instanceof DialError)) throw err;
        ctx.metrics.connectErrors.inc({ ...labels, reason: err.code });
        ctx.warnLimited(`connect:${labels.service}`, "cannot reach endpoint", {
          ...labels,
          endpoint: ep.id,
          node: ep.node,
          code: err.code,
          error: err.message,
        });
        if (!err.retryable || ctx.signal.aborted) return undefined;
        state.markFailure(ep.id);
        tried.add(ep.id);
      }
    }
    return undefined;
  }
}
