/**
 * The UDP listener of one service port: one flow per client address, each with its own
 * upstream channel (kernel socket or tunnel datagram channel, boundaries preserved), closed
 * after `udpIdleTimeoutMs` without traffic; flows are bounded per port.
 */

import { type DatagramChannel, DialError } from "../contracts/mod.ts";
import type { Picked } from "../lb/mod.ts";
import type { ProxyContext } from "./context.ts";
import { KernelDatagramChannel } from "./kernel_datagram.ts";
import type { PortState } from "./port_state.ts";
import type { ProxyEndpoint } from "./service_table.ts";

const MAX_PENDING = 64;
const MAX_IN_FLIGHT = 256;

interface Flow {
  key: string;
  addr: Deno.NetAddr;
  channel?: DatagramChannel;
  picked?: Picked<ProxyEndpoint>;
  pending: Uint8Array[];
  inFlight: number;
  last: number;
  timer?: ReturnType<typeof setTimeout>;
  closed: boolean;
}

export class UdpPortListener {
  #flows = new Map<string, Flow>();
  #serving?: Promise<void>;
  #closed = false;
  #buf = new Uint8Array(65536);

  private constructor(
    readonly sock: Deno.DatagramConn,
    public state: PortState,
    private readonly ctx: ProxyContext,
  ) {}

  static open(hostname: string, state: PortState, ctx: ProxyContext): UdpPortListener {
    const sock = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
    const u = new UdpPortListener(sock, state, ctx);
    u.#serving = u.#loop();
    return u;
  }

  get port(): number {
    return (this.sock.addr as Deno.NetAddr).port;
  }

  get flowCount(): number {
    return this.#flows.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of [...this.#flows.values()]) this.#closeFlow(f);
    this.sock.close();
    await this.#serving;
  }

  async #loop(): Promise<void> {
    for (;;) {
      let data: Uint8Array, addr: Deno.NetAddr;
      try {
        const got = await this.sock.receive(this.#buf);
        data = got[0];
        addr = got[1] as Deno.NetAddr;
      } catch (err) {
        if (
          this.#closed || err instanceof Deno.errors.BadResource ||
          err instanceof Deno.errors.Interrupted
        ) return;
        // ICMP errors from earlier sends surface here; the socket stays usable.
        if (
          err instanceof Deno.errors.ConnectionRefused || err instanceof Deno.errors.ConnectionReset
        ) continue;
        throw err;
      }
      await this.#dispatch(data, addr);
    }
  }

  async #dispatch(data: Uint8Array, addr: Deno.NetAddr): Promise<void> {
    const { ctx, state } = this;
    const labels = state.labels;
    const key = `${addr.hostname}|${addr.port}`;
    let f = this.#flows.get(key);
    if (!f) {
      if (!state.hasEndpoints()) {
        ctx.metrics.udpDropped.inc({ ...labels, reason: "no_endpoints" });
        return;
      }
      if (this.#flows.size >= ctx.options.udpMaxFlows) {
        ctx.metrics.udpDropped.inc({ ...labels, reason: "flow_limit" });
        return;
      }
      f = { key, addr, pending: [data.slice()], inFlight: 0, last: ctx.now(), closed: false };
      this.#flows.set(key, f);
      ctx.metrics.total.inc(labels);
      ctx.metrics.active.inc(labels);
      this.#armIdle(f, ctx.options.udpIdleTimeoutMs);
      this.#open(f);
      return;
    }
    f.last = ctx.now();
    const ch = f.channel;
    if (!ch) {
      if (f.pending.length < MAX_PENDING) f.pending.push(data.slice());
      else ctx.metrics.udpDropped.inc({ ...labels, reason: "pending_full" });
      return;
    }
    ctx.metrics.bytes.inc({ ...labels, direction: "tx" }, data.length);
    if (ch instanceof KernelDatagramChannel) {
      // A kernel send completes at once; awaiting it lets the receive buffer be reused.
      await this.#send(f, ch, data);
    } else if (f.inFlight < MAX_IN_FLIGHT) {
      f.inFlight++;
      this.#send(f, ch, data.slice()).finally(() => f.inFlight--);
    } else ctx.metrics.udpDropped.inc({ ...labels, reason: "backpressure" });
  }

  async #send(f: Flow, ch: DatagramChannel, data: Uint8Array): Promise<void> {
    try {
      await ch.send(data);
    } catch (err) {
      this.ctx.metrics.udpDropped.inc({ ...this.state.labels, reason: "send_error" });
      this.ctx.warnLimited(`udp-send:${this.state.labels.service}`, "cannot send datagram", {
        ...this.state.labels,
        error: err,
      });
      this.#closeFlow(f);
    }
  }

  #armIdle(f: Flow, ms: number): void {
    f.timer = setTimeout(() => {
      const idle = this.ctx.now() - f.last;
      if (idle >= this.ctx.options.udpIdleTimeoutMs) this.#closeFlow(f);
      else this.#armIdle(f, this.ctx.options.udpIdleTimeoutMs - idle);
    }, ms);
  }

  async #open(f: Flow): Promise<void> {
    const { ctx, state } = this;
    const labels = state.labels;
    const tried = new Set<string>();
    for (let attempt = 0; attempt < ctx.options.maxConnectAttempts && !f.closed; attempt++) {
      const picked = state.pick({ clientIp: f.addr.hostname }, tried);
      if (!picked) break;
      const ep = picked.endpoint;
      try {
        const ch = await ctx.connector.openDatagram(ep, ctx.signal);
        if (f.closed) {
          ch.close();
          picked.release();
          return;
        }
        state.markSuccess(ep.id);
        ctx.metrics.picks.inc({ ...labels, endpoint: ep.id, path: ch.path });
        f.channel = ch;
        f.picked = picked;
        const pending = f.pending;
        f.pending = [];
        for (const d of pending) {
          ctx.metrics.bytes.inc({ ...labels, direction: "tx" }, d.length);
          await this.#send(f, ch, d);
        }
        await this.#pumpBack(f, ch);
        return;
      } catch (err) {
        picked.release();
        if (!(err instanceof DialError)) {
          this.#closeFlow(f);
          throw err;
        }
        ctx.metrics.connectErrors.inc({ ...labels, reason: err.code });
        if (!err.retryable) break;
        state.markFailure(ep.id);
        tried.add(ep.id);
      }
    }
    this.#closeFlow(f);
  }

  async #pumpBack(f: Flow, ch: DatagramChannel): Promise<void> {
    const labels = this.state.labels;
    const to: Deno.NetAddr = { transport: "udp", hostname: f.addr.hostname, port: f.addr.port };
    try {
      for (;;) {
        const d = await ch.receive();
        if (d === null) break;
        f.last = this.ctx.now();
        await this.sock.send(d, to);
        this.ctx.metrics.bytes.inc({ ...labels, direction: "rx" }, d.length);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource) && !f.closed) {
        this.ctx.warnLimited(`udp-recv:${labels.service}`, "UDP flow ended on error", {
          ...labels,
          error: err,
        });
      }
    } finally {
      this.#closeFlow(f);
    }
  }

  #closeFlow(f: Flow): void {
    if (f.closed) return;
    f.closed = true;
    clearTimeout(f.timer);
    this.#flows.delete(f.key);
    f.channel?.close();
    f.picked?.release();
    this.ctx.metrics.active.dec(this.state.labels);
  }
}
