/**
 * The receiving side of `/edgemesh/proxy/1.0.0`: read a bounded header within a deadline,
 * check the target against LocalTargets, dial it, reply, then copy bytes (TCP) or framed
 * datagrams (UDP) until either side ends. Every exit path closes the target socket and the
 * stream.
 */

import type { Stream } from "@libp2p/interface";
import type { Logger } from "../log/mod.ts";
import { LogRateLimiter } from "../log/mod.ts";
import { WireError } from "./errors.ts";
import type { TunnelMetrics } from "./metrics.ts";
import type { LocalTargets } from "./options.ts";
import { closeStream, deadline, sendAll, StreamReader } from "./stream_io.ts";
import {
  decodeHeader,
  decodeRequestPrefix,
  encodeReply,
  errorToReply,
  frameHeader,
  type ProxyHeader,
  type ReplyCode,
} from "./wire.ts";

export interface ProxyServerContext {
  localTargets: LocalTargets;
  logger: Logger;
  metrics: TunnelMetrics;
  headerTimeoutMs: number;
  udpIdleTimeoutMs: number;
  /** Aborted when the tunnel stops. */
  shutdown: AbortSignal;
}

const COPY_BUFFER = 64 * 1024;

export class ProxyServer {
  #limiter = new LogRateLimiter(5, 10_000);
  constructor(readonly ctx: ProxyServerContext) {}

  /** Serves one inbound stream from the verified node `remoteNode`. Never throws. */
  async serve(stream: Stream, remoteNode: string): Promise<void> {
    const reader = new StreamReader(stream);
    let header: ProxyHeader;
    const d = deadline(this.ctx.headerTimeoutMs, this.ctx.shutdown);
    try {
      const len = decodeRequestPrefix(await reader.readExactly(3, d.signal));
      header = decodeHeader(await reader.readExactly(len, d.signal));
    } catch (err) {
      const reason = err instanceof WireError ? "protocol" : "timeout";
      this.#reject(stream, reader, reason, remoteNode, err);
      return;
    } finally {
      d.clear();
    }
    if (!this.ctx.localTargets.allowed(header.ip, header.port, header.protocol)) {
      this.#note("forbidden target", remoteNode, header);
      this.ctx.metrics.rejects.inc({ reason: "forbidden" });
      await this.#replyAndClose(stream, reader, "forbidden");
      return;
    }
    const labels = { direction: "in", protocol: header.protocol };
    this.ctx.metrics.streamsOpen.inc(labels);
    try {
      if (header.protocol === "tcp") await this.#serveTcp(stream, reader, header, remoteNode);
      else await this.#serveUdp(stream, reader, header, remoteNode);
    } finally {
      this.ctx.metrics.streamsOpen.dec(labels);
    }
  }

  #reject(stream: Stream, reader: StreamReader, reason: string, node: string, err: unknown): void {
    this.ctx.metrics.rejects.inc({ reason });
    const n = this.#limiter.allow(`reject:${reason}`);
    if (n !== undefined) {
      this.ctx.logger.warn("bad proxy request, stream reset", {
        node,
        reason,
        error: err,
        suppressed: n,
      });
    }
    reader.detach();
    stream.abort(err instanceof Error ? err : new WireError(String(err)));
  }

  #note(msg: string, node: string, h: ProxyHeader): void {
    const n = this.#limiter.allow(msg);
    if (n !== undefined) {
      this.ctx.logger.warn(msg, {
        node,
        target: `${h.protocol}://${h.ip}:${h.port}`,
        suppressed: n,
      });
    }
  }

  async #replyAndClose(stream: Stream, reader: StreamReader, code: ReplyCode): Promise<void> {
    try {
      stream.send(encodeReply(code));
    } catch {
      // The stream is already gone; closing below is all that is left to do.
    }
    reader.detach();
    await closeStream(stream);
  }

  async #serveTcp(
    stream: Stream,
    reader: StreamReader,
    h: ProxyHeader,
    node: string,
  ): Promise<void> {
    let conn: Deno.TcpConn;
    const d = deadline(this.ctx.headerTimeoutMs, this.ctx.shutdown);
    try {
      conn = await Deno.connect({ hostname: h.ip, port: h.port, signal: d.signal });
    } catch (err) {
      const code = errorToReply(err);
      this.ctx.metrics.rejects.inc({ reason: code });
      this.ctx.logger.debug("target dial failed", {
        node,
        target: `${h.ip}:${h.port}`,
        code,
        error: err,
      });
      await this.#replyAndClose(stream, reader, code);
      return;
    } finally {
      d.clear();
    }
    const m = this.ctx.metrics;
    const fail = (err: unknown) => {
      if (stream.status === "open" || stream.status === "closing") {
        stream.abort(err instanceof Error ? err : new WireError(String(err)));
      }
      try {
        conn.close();
      } catch {
        // Already closed by the other direction.
      }
    };
    const onShutdown = () => fail(new WireError("tunnel stopping"));
    this.ctx.shutdown.addEventListener("abort", onShutdown, { once: true });
    try {
      stream.send(encodeReply("ok"));
      const up = (async () => {
        for (;;) {
          const c = await reader.read();
          if (c === null) break;
          let o = 0;
          while (o < c.byteLength) o += await conn.write(o === 0 ? c : c.subarray(o));
          m.bytes.inc({ direction: "rx" }, c.byteLength);
        }
        await conn.closeWrite();
      })();
      const down = (async () => {
        const scratch = new Uint8Array(COPY_BUFFER);
        for (;;) {
          const n = await conn.read(scratch);
          if (n === null) break;
          await sendAll(stream, scratch.slice(0, n));
          m.bytes.inc({ direction: "tx" }, n);
        }
        await stream.close();
      })();
      await Promise.all([
        up.catch((e) => {
          fail(e);
          throw e;
        }),
        down.catch((e) => {
          fail(e);
          throw e;
        }),
      ]);
    } catch (err) {
      if (!this.ctx.shutdown.aborted) {
        this.ctx.logger.debug("tcp proxy ended with error", { node, error: err });
      }
    } finally {
      this.ctx.shutdown.removeEventListener("abort", onShutdown);
      try {
        conn.close();
      } catch {
        // Already closed by fail().
      }
      reader.detach();
      await closeStream(stream);
    }
  }

  async #serveUdp(
    stream: Stream,
    reader: StreamReader,
    h: ProxyHeader,
    node: string,
  ): Promise<void> {
    let sock: Deno.DatagramConn;
    try {
      sock = Deno.listenDatagram({
        transport: "udp",
        hostname: h.ip.includes(":") ? "::" : "0.0.0.0",
        port: 0,
      });
    } catch (err) {
      await this.#replyAndClose(stream, reader, errorToReply(err));
      return;
    }
    const m = this.ctx.metrics;
    let closed = false;
    let last = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stop = (err?: unknown) => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        // Already closed.
      }
      if (err !== undefined && (stream.status === "open" || stream.status === "closing")) {
        stream.abort(err instanceof Error ? err : new WireError(String(err)));
      }
    };
    const idle = this.ctx.udpIdleTimeoutMs;
    const arm = (ms: number) => {
      timer = setTimeout(() => {
        const left = idle - (performance.now() - last);
        if (left > 0) arm(left);
        else stop();
      }, ms);
    };
    arm(idle);
    const onShutdown = () => stop(new WireError("tunnel stopping"));
    this.ctx.shutdown.addEventListener("abort", onShutdown, { once: true });
    try {
      stream.send(encodeReply("ok"));
      const target: Deno.NetAddr = { transport: "udp", hostname: h.ip, port: h.port };
      const up = (async () => {
        while (!closed) {
          const lenBytes = await reader.readExactly(2).catch((e) => {
            if (e instanceof WireError && reader.buffered === 0) return null;
            throw e;
          });
          if (lenBytes === null) break;
          const len = (lenBytes[0] << 8) | lenBytes[1];
          const payload = await reader.readExactly(len);
          last = performance.now();
          await sock.send(payload, target);
          m.bytes.inc({ direction: "rx" }, len);
        }
        stop();
      })();
      const down = (async () => {
        for await (const [data, addr] of sock) {
          const a = addr as Deno.NetAddr;
          if (a.port !== h.port || a.hostname !== h.ip) continue;
          last = performance.now();
          const out = new Uint8Array(2 + data.byteLength);
          out.set(frameHeader(data.byteLength));
          out.set(data, 2);
          await sendAll(stream, out);
          m.bytes.inc({ direction: "tx" }, data.byteLength);
        }
      })();
      await Promise.all([
        up.catch((e) => stop(e)),
        down.catch((e) => {
          if (!closed) stop(e);
        }),
      ]);
    } catch (err) {
      this.ctx.logger.debug("udp proxy ended with error", { node, error: err });
    } finally {
      this.ctx.shutdown.removeEventListener("abort", onShutdown);
      stop();
      reader.detach();
      await closeStream(stream);
    }
  }
}
