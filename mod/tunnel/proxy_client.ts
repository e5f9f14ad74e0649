/**
 * The dialing side of `/edgemesh/proxy/1.0.0`: send the header, read the reply, and wrap
 * the stream as the contract's ByteStream or DatagramChannel.
 */

import type { Stream } from "@libp2p/interface";
import type { ByteStream, DatagramChannel, DialTarget, PathKind } from "../contracts/mod.ts";
import { DialError } from "../contracts/mod.ts";
import { WireError } from "./errors.ts";
import type { TunnelMetrics } from "./metrics.ts";
import { closeStream, sendAll, StreamReader } from "./stream_io.ts";
import { decodeReply, encodeRequest, frameHeader, MAX_DATAGRAM_BYTES } from "./wire.ts";

/** Writes the request and waits for the reply; on failure the stream is closed. */
export async function negotiate(
  stream: Stream,
  target: DialTarget,
  sourceNode: string,
  signal: AbortSignal,
): Promise<StreamReader> {
  const reader = new StreamReader(stream);
  try {
    await sendAll(stream, encodeRequest({ ...target, sourceNode }), signal);
    const code = decodeReply(await reader.readExactly(2, signal));
    if (code === "ok") return reader;
    throw new DialError(code, target, `the remote agent answered "${code}"`);
  } catch (err) {
    reader.detach();
    stream.abort(err instanceof Error ? err : new WireError(String(err)));
    if (err instanceof DialError) throw err;
    if (signal.aborted) {
      throw new DialError("timeout", target, "no reply from the remote agent", { cause: err });
    }
    if (err instanceof WireError) {
      throw new DialError("protocol", target, err.message, { cause: err });
    }
    throw new DialError("unreachable", target, "the stream failed during setup", { cause: err });
  }
}

interface Tracking {
  metrics: TunnelMetrics;
  onClose(): void;
}

function trackClose(stream: Stream, t: Tracking, protocol: string): void {
  const labels = { direction: "out", protocol };
  t.metrics.streamsOpen.inc(labels);
  stream.addEventListener("close", () => {
    t.metrics.streamsOpen.dec(labels);
    t.onClose();
  }, { once: true });
}

export class TunnelByteStream implements ByteStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  #closed = false;

  constructor(
    readonly stream: Stream,
    readonly reader: StreamReader,
    readonly path: PathKind,
    readonly relay: string | undefined,
    t: Tracking,
  ) {
    trackClose(stream, t, "tcp");
    const m = t.metrics;
    this.readable = new ReadableStream<Uint8Array>({
      pull: async (c) => {
        let chunk: Uint8Array | null;
        try {
          chunk = await reader.read();
        } catch (err) {
          // Reset or aborted (its connection lost): to the reader, a connection reset.
          const why = err instanceof Error ? err.message : String(err);
          throw new Deno.errors.ConnectionReset(`tunnel stream failed: ${why}`, { cause: err });
        }
        if (chunk === null) c.close();
        else {
          m.bytes.inc({ direction: "rx" }, chunk.byteLength);
          c.enqueue(chunk);
        }
      },
      cancel: () => {
        this.close();
      },
    }, { highWaterMark: 0 });
    this.writable = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        await sendAll(stream, chunk);
        m.bytes.inc({ direction: "tx" }, chunk.byteLength);
      },
      close: () => stream.close(),
      abort: (reason) => {
        stream.abort(reason instanceof Error ? reason : new WireError(String(reason)));
      },
    });
  }

  closeWrite(): Promise<void> {
    return this.stream.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    void closeStream(this.stream).finally(() => this.reader.detach());
  }
}

export class TunnelDatagramChannel implements DatagramChannel {
  #closed = false;
  readonly #m: TunnelMetrics;

  constructor(
    readonly stream: Stream,
    readonly reader: StreamReader,
    readonly path: PathKind,
    readonly relay: string | undefined,
    t: Tracking,
  ) {
    trackClose(stream, t, "udp");
    this.#m = t.metrics;
  }

  async send(datagram: Uint8Array): Promise<void> {
    if (datagram.byteLength > MAX_DATAGRAM_BYTES) {
      throw new WireError(`datagram of ${datagram.byteLength} bytes too large`);
    }
    const out = new Uint8Array(2 + datagram.byteLength);
    out.set(frameHeader(datagram.byteLength));
    out.set(datagram, 2);
    await sendAll(this.stream, out);
    this.#m.bytes.inc({ direction: "tx" }, datagram.byteLength);
  }

  async receive(): Promise<Uint8Array | null> {
    if (this.#closed) return null;
    try {
      const h = await this.reader.readExactly(2);
      const d = await this.reader.readExactly((h[0] << 8) | h[1]);
      this.#m.bytes.inc({ direction: "rx" }, d.byteLength);
      return d;
    } catch {
      // End of stream, reset by the peer, or a malformed frame: the channel is over.
      this.close();
      return null;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    void closeStream(this.stream).finally(() => this.reader.detach());
  }
}
