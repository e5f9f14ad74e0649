/**
 * `Wire`: one full-duplex byte connection, whatever carries it (a Deno TCP connection, a
 * node:tls socket, a Dialer stream), with explicit half-close, plus the copy helpers.
 */

import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import type { ByteStream, PathKind } from "../contracts/mod.ts";

export interface Wire {
  readonly readable: ReadableStream<Uint8Array>;
  write(chunk: Uint8Array): Promise<void>;
  /** Sends FIN; later writes fail. Idempotent. */
  closeWrite(): Promise<void>;
  /** Ends both directions. Idempotent. */
  close(): void;
}

export interface UpstreamWire extends Wire {
  readonly path: PathKind;
  readonly relay?: string;
}

const READ_SIZE = 64 * 1024;

/**
 * Wraps a Deno connection. Reads go through `conn.read()` rather than `conn.readable`, whose
 * end of stream closes the whole connection and so breaks half-close (measured on Deno 2.9).
 */
export function wireFromConn(conn: Deno.Conn): Wire {
  let closed = false;
  let writeClosed = false;
  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buf = new Uint8Array(READ_SIZE);
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        if (closed && err instanceof Deno.errors.BadResource) n = null;
        else throw err;
      }
      if (n === null) controller.close();
      else controller.enqueue(buf.subarray(0, n));
    },
  }, { highWaterMark: 0 });
  return {
    readable,
    async write(chunk) {
      let off = 0;
      while (off < chunk.length) off += await conn.write(chunk.subarray(off));
    },
    async closeWrite() {
      if (writeClosed || closed) return;
      writeClosed = true;
      try {
        await conn.closeWrite();
      } catch (err) {
        if (!(err instanceof Deno.errors.NotConnected || err instanceof Deno.errors.BadResource)) {
          throw err;
        }
      }
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch (err) {
        if (!(err instanceof Deno.errors.BadResource)) throw err;
      }
    },
  };
}

export function wireFromByteStream(s: ByteStream): UpstreamWire {
  let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let writeClosed = false;
  return {
    readable: s.readable,
    path: s.path,
    relay: s.relay,
    write(chunk) {
      writer ??= s.writable.getWriter();
      return writer.write(chunk);
    },
    async closeWrite() {
      if (writeClosed) return;
      writeClosed = true;
      writer?.releaseLock();
      writer = undefined;
      await s.closeWrite();
    },
    close() {
      s.close();
    },
  };
}

/** Wraps a node socket (used for node:tls connections). */
export function wireFromSocket(sock: Socket): Wire {
  const { readable } = Duplex.toWeb(sock) as unknown as { readable: ReadableStream<Uint8Array> };
  return {
    readable,
    write(chunk) {
      return new Promise((resolve, reject) => {
        if (sock.destroyed || sock.writableEnded) return reject(new Error("socket closed"));
        sock.write(chunk, (err) => err ? reject(err) : resolve());
      });
    },
    closeWrite() {
      if (!sock.writableEnded && !sock.destroyed) sock.end();
      return Promise.resolve();
    },
    close() {
      sock.destroy();
    },
  };
}

/** One side of a splice: where its bytes come from and the wire they go back out on. */
export interface SpliceEnd {
  reader: ReadableStreamDefaultReader<Uint8Array>;
  wire: Wire;
}

/**
 * Copies bytes both ways until both directions ended, half-closing each side after its
 * peer's end of stream. Fails with a TimeoutError when no byte moved either way for
 * `idleMs`, or a write stalls that long; the caller closes both wires.
 */
export async function splice(
  client: SpliceEnd,
  upstream: SpliceEnd,
  idleMs: number,
  count?: (direction: "rx" | "tx", n: number) => void,
): Promise<void> {
  let last = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    const tick = () => {
      const left = last + idleMs - Date.now();
      if (left <= 0) {
        reject(new DOMException(`no bytes either way for ${idleMs} ms`, "TimeoutError"));
      } else timer = setTimeout(tick, left);
    };
    if (idleMs > 0) timer = setTimeout(tick, idleMs);
  });
  const copy = async (reader: SpliceEnd["reader"], to: Wire, direction: "rx" | "tx") => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (value.length === 0) continue;
      last = Date.now();
      count?.(direction, value.length);
      await withTimeout(to.write(value), idleMs, "write");
    }
    await to.closeWrite();
  };
  try {
    await Promise.race([
      Promise.all([
        copy(client.reader, upstream.wire, "rx"),
        copy(upstream.reader, client.wire, "tx"),
      ]),
      watchdog,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Settles like `p`, or rejects with a DOMException "TimeoutError" after `ms` (0 = no limit). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  if (ms <= 0) return p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DOMException(`${what} stalled for ${ms} ms`, "TimeoutError")),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** One read that fails with a DOMException "TimeoutError" after `ms` (0 = no limit). */
export function readWithTimeout<T>(
  reader: ReadableStreamDefaultReader<T>,
  ms: number,
): Promise<ReadableStreamReadResult<T>> {
  if (ms <= 0) return reader.read();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DOMException(`no data for ${ms} ms`, "TimeoutError")), ms);
  });
  return Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
}
