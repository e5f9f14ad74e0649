/**
 * Paths to an endpoint: `local` (on this node) and `lan` (another node reachable from here)
 * use the kernel; the rest goes through the tunnel `Dialer`. Whether a remote endpoint's
 * address is reachable directly is learned by trying, remembered per IP for a while, and a
 * failed direct attempt falls back to the tunnel.
 */

import {
  type DatagramChannel,
  type Dialer,
  DialError,
  type DialTarget,
  type PathKind,
} from "../contracts/mod.ts";
import { ConnDuplex, type Duplex, StreamDuplex } from "./duplex.ts";
import { KernelDatagramChannel } from "./kernel_datagram.ts";
import type { ProxyEndpoint } from "./service_table.ts";

export interface Connected {
  duplex: Duplex;
  path: PathKind;
  relay?: string;
}

export interface ConnectorOptions {
  nodeName: string;
  lanDirect: boolean;
  connectTimeoutMs: number;
  lanConnectTimeoutMs: number;
  lanVerdictTtlMs: number;
}

export class Connector {
  #lan = new Map<string, { reachable: boolean; until: number }>();

  constructor(
    private readonly deps: { dialer: Dialer; now: () => number },
    private readonly o: ConnectorOptions,
  ) {}

  /** Remembered LAN verdict for an IP, if still fresh. */
  lanVerdict(ip: string): boolean | undefined {
    const v = this.#lan.get(ip);
    if (!v) return undefined;
    if (v.until <= this.deps.now()) {
      this.#lan.delete(ip);
      return undefined;
    }
    return v.reachable;
  }

  #remember(ip: string, reachable: boolean): void {
    this.#lan.set(ip, { reachable, until: this.deps.now() + this.o.lanVerdictTtlMs });
    if (this.#lan.size > 16384) this.#lan.delete(this.#lan.keys().next().value!);
  }

  /** The path a connection to this endpoint would take now (for status and locality). */
  expectedPath(ep: ProxyEndpoint): PathKind | "tunnel" {
    if (!ep.node || ep.node === this.o.nodeName) return ep.node ? "local" : "lan";
    if (this.o.lanDirect && this.lanVerdict(ep.ip) !== false) return "lan";
    return "tunnel";
  }

  async connectTcp(ep: ProxyEndpoint, signal: AbortSignal): Promise<Connected> {
    const target: DialTarget & { protocol: "tcp" } = {
      node: ep.node ?? "",
      ip: ep.ip,
      port: ep.port,
      protocol: "tcp",
    };
    const local = ep.node === this.o.nodeName;
    if (local || !ep.node) {
      const conn = await kernelConnect(target, this.o.connectTimeoutMs, signal);
      return { duplex: new ConnDuplex(conn), path: local ? "local" : "lan" };
    }
    if (this.o.lanDirect && this.lanVerdict(ep.ip) !== false) {
      try {
        const conn = await kernelConnect(target, this.o.lanConnectTimeoutMs, signal);
        this.#remember(ep.ip, true);
        return { duplex: new ConnDuplex(conn), path: "lan" };
      } catch (err) {
        if (!(err instanceof DialError) || signal.aborted) throw err;
        // Refused: the host answered, so the address is reachable and the endpoint is down.
        this.#remember(ep.ip, err.code === "refused");
        if (err.code === "refused") throw err;
      }
    }
    const s = await this.deps.dialer.dialStream(target, {
      signal,
      timeoutMs: this.o.connectTimeoutMs,
    });
    return { duplex: new StreamDuplex(s), path: s.path, relay: s.relay };
  }

  /**
   * UDP gives no answer to probe with: a remote endpoint goes direct when its IP is known
   * reachable, or, not known yet, when a TCP connect to it answers (see `#probeLan`).
   */
  async openDatagram(ep: ProxyEndpoint, signal: AbortSignal): Promise<DatagramChannel> {
    const local = ep.node === this.o.nodeName;
    if (local || !ep.node || (this.o.lanDirect && await this.#probeLan(ep, signal))) {
      return KernelDatagramChannel.open(ep.ip, ep.port, local ? "local" : "lan");
    }
    return await this.deps.dialer.dialDatagram(
      { node: ep.node, ip: ep.ip, port: ep.port, protocol: "udp" },
      { signal, timeoutMs: this.o.connectTimeoutMs },
    );
  }

  /**
   * Whether `ep.ip` is reachable directly: the remembered verdict, else a TCP connect to the
   * endpoint's port (accepted or refused: the host answered; no answer in
   * `lanConnectTimeoutMs`: not reachable). Remembered like the verdicts of TCP connections.
   */
  async #probeLan(ep: ProxyEndpoint, signal: AbortSignal): Promise<boolean> {
    const known = this.lanVerdict(ep.ip);
    if (known !== undefined) return known;
    const target = { node: ep.node ?? "", ip: ep.ip, port: ep.port, protocol: "tcp" as const };
    try {
      (await kernelConnect(target, this.o.lanConnectTimeoutMs, signal)).close();
      this.#remember(ep.ip, true);
      return true;
    } catch (err) {
      if (!(err instanceof DialError) || signal.aborted) throw err;
      this.#remember(ep.ip, err.code === "refused");
      return err.code === "refused";
    }
  }
}

/** Kernel TCP connect bounded by a timeout and a signal; failures become DialErrors. */
export async function kernelConnect(
  target: DialTarget,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Deno.TcpConn> {
  const p = Deno.connect({ hostname: target.ip, port: target.port, transport: "tcp" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DialError("timeout", target, `no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    onAbort = () => reject(new DialError("timeout", target, "aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const conn = await Promise.race([p, stop]);
    conn.setNoDelay(true);
    return conn;
  } catch (err) {
    // A connect that completes after we gave up must not leak.
    p.then((c) => c.close(), () => undefined);
    if (err instanceof DialError) throw err;
    if (err instanceof Deno.errors.ConnectionRefused) {
      throw new DialError("refused", target, "connection refused", { cause: err });
    }
    if (err instanceof Deno.errors.TimedOut) {
      throw new DialError("timeout", target, "connect timed out", { cause: err });
    }
    if (err instanceof Error) {
      throw new DialError("unreachable", target, err.message, { cause: err });
    }
    throw err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort!);
  }
}
