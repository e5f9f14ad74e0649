/**
 * The batched UDP path: the socket is bound here (FFI, SO_REUSEPORT), a worker receives and
 * answers cluster names in batches of up to 64 (`recvmmsg`/`sendmmsg`), and hands the rest
 * to this thread's handler, whose answers leave through `sendto` on the same socket.
 */

import type { Logger } from "../log/mod.ts";
import { LogRateLimiter } from "../log/mod.ts";
import { DnsBindError } from "./errors.ts";
import { BindFailure, bindUdp, errno, type Libc, openLibc } from "./ffi_libc.ts";
import type { DnsHandler } from "./handler.ts";
import type { DnsMetrics } from "./metrics.ts";
import type { UdpListener } from "./udp_listener.ts";
import type { ClusterZone } from "./zone.ts";

const RECV_TIMEOUT_MS = 100;
const STOP_TIMEOUT_MS = 3000;

export class BatchedUdpListener implements UdpListener {
  readonly path = "batched";
  readonly port: number;
  #libc: Libc;
  #fd: number;
  #worker?: Worker;
  #control = new Int32Array(new SharedArrayBuffer(8));
  #closed = false;
  #stopped?: Promise<void>;
  #resolveStopped?: () => void;
  #unsubscribe?: () => void;
  #zonePosted = false;
  #warn = new LogRateLimiter(3, 10_000);
  #ready = Promise.withResolvers<void>();

  constructor(
    readonly hostname: string,
    port: number,
    private readonly handler: DnsHandler,
    private readonly zone: ClusterZone,
    private readonly metrics: DnsMetrics,
    private readonly logger: Logger,
    private readonly maxUdpPayload: number,
  ) {
    this.#libc = openLibc();
    try {
      const b = bindUdp(this.#libc, hostname, port, RECV_TIMEOUT_MS);
      this.#fd = b.fd;
      this.port = b.port;
    } catch (err) {
      this.#libc.close();
      if (err instanceof BindFailure) {
        throw new DnsBindError(hostname, port, "udp", err.message, { cause: err });
      }
      throw err;
    }
  }

  serve(): Promise<void> {
    if (this.#stopped) return this.#stopped;
    this.#stopped = new Promise((r) => (this.#resolveStopped = r));
    this.#ready.promise.catch(() => {}); // observed by the server's start(); never unhandled here
    const worker = new Worker(new URL("./batched_worker.ts", import.meta.url), { type: "module" });
    this.#worker = worker;
    worker.onmessage = (e: MessageEvent) => this.#onMessage(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      this.logger.error("batched DNS worker failed", { error: e.message });
      this.#finish();
    };
    // Catalog changes: bump the generation at once (the worker waits for the new table).
    this.#unsubscribe = this.zone.onInvalidate(() => {
      Atomics.store(this.#control, 1, this.zone.generation);
      if (this.#zonePosted) return;
      this.#zonePosted = true;
      queueMicrotask(() => {
        this.#zonePosted = false;
        if (!this.#closed) worker.postMessage({ type: "zone", snapshot: this.zone.snapshot() });
      });
    });
    Atomics.store(this.#control, 1, this.zone.generation);
    worker.postMessage({
      type: "start",
      fd: this.#fd,
      control: this.#control.buffer,
      snapshot: this.zone.snapshot(),
      maxUdpPayload: this.maxUdpPayload,
    });
    return this.#stopped;
  }

  #onMessage(m: { type: string; [k: string]: unknown }): void {
    switch (m.type) {
      case "queries": {
        const b = m.packed as Uint8Array;
        for (let off = 0; off + 3 <= b.length;) {
          const len = (b[off] << 8) | b[off + 1];
          const alen = b[off + 2];
          const msg = b.subarray(off + 3, off + 3 + len);
          const addr = b.subarray(off + 3 + len, off + 3 + len + alen);
          off += 3 + len + alen;
          this.#fallback(msg, addr);
        }
        break;
      }
      case "stats": {
        for (const [key, n] of m.counts as [string, number][]) this.handler.count(key, n);
        for (const s of m.latencies as Float64Array) this.handler.observe("cluster", s);
        break;
      }
      case "ready":
        this.#ready.resolve();
        break;
      case "error":
        this.logger.error("batched DNS worker error", { error: m.message });
        this.#ready.reject(new Error(`batched DNS worker failed: ${m.message}`));
        break;
      case "stopped":
        this.#finish();
        break;
    }
  }

  /** A query the worker does not answer: the shared handler, then sendto. */
  #fallback(msg: Uint8Array, addr: Uint8Array): void {
    const send = (resp: Uint8Array | null) => {
      if (!resp || this.#closed) return;
      const r = this.#libc.symbols.sendto(
        this.#fd,
        resp,
        BigInt(resp.length),
        0,
        addr,
        addr.length,
      );
      if (Number(r) < 0) this.#sendFailed(errno(this.#libc));
    };
    const r = this.handler.handle(msg, "udp");
    if (r instanceof Promise) {
      r.then(send).catch((err) => this.logger.warn("DNS query failed", { error: err }));
    } else send(r);
  }

  #sendFailed(code: number): void {
    this.metrics.dropped.inc({ reason: "udp_error" });
    const suppressed = this.#warn.allow("sendto");
    if (suppressed !== undefined) {
      this.logger.warn("UDP DNS send failed", {
        listener: `${this.hostname}:${this.port}`,
        errno: code,
        suppressed,
      });
    }
  }

  ready(): Promise<void> {
    return this.#ready.promise;
  }

  #finish(): void {
    this.#ready.reject(new Error("batched DNS worker stopped before it was ready"));
    if (!this.#worker) return;
    this.#worker.terminate();
    this.#worker = undefined;
    this.#unsubscribe?.();
    this.#closed = true;
    this.#libc.symbols.close(this.#fd);
    this.#libc.close();
    this.#resolveStopped?.();
  }

  close(): void {
    if (this.#closed) return;
    Atomics.store(this.#control, 0, 1);
    if (!this.#worker) {
      this.#closed = true;
      this.#libc.symbols.close(this.#fd);
      this.#libc.close();
      return;
    }
    // The worker leaves recvmmsg within RECV_TIMEOUT_MS and says "stopped"; never wait forever.
    const timer = setTimeout(() => this.#finish(), STOP_TIMEOUT_MS);
    this.#stopped?.then(() => clearTimeout(timer));
  }
}
