/**
 * A minimal full-duplex byte pipe the relay loop drives: kernel connections read into the
 * relay's reused buffer; tunnel `ByteStream`s are adapted.
 */

import type { ByteStream } from "../contracts/mod.ts";

export interface Duplex {
  /** Reads into `buf`; null at end of stream. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes all of `data`; resolves when it may be reused. */
  write(data: Uint8Array): Promise<void>;
  /** Half-close: send FIN, keep reading. */
  closeWrite(): Promise<void>;
  close(): void;
}

/** A kernel TCP connection. */
export class ConnDuplex implements Duplex {
  #closed = false;
  constructor(readonly conn: Deno.Conn) {}

  read(buf: Uint8Array): Promise<number | null> {
    return this.conn.read(buf);
  }
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.conn.write(data.subarray(off));
  }
  async closeWrite(): Promise<void> {
    if (!this.#closed) await this.conn.closeWrite();
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  }
}

/** A tunnel (or any WHATWG-streams) byte stream. */
export class StreamDuplex implements Duplex {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #rest: Uint8Array | undefined;
  #closed = false;

  constructor(readonly stream: ByteStream) {
    this.#reader = stream.readable.getReader();
    this.#writer = stream.writable.getWriter();
  }

  async read(buf: Uint8Array): Promise<number | null> {
    let chunk = this.#rest;
    this.#rest = undefined;
    while (!chunk || chunk.length === 0) {
      const r = await this.#reader.read();
      if (r.done) return null;
      chunk = r.value;
    }
    const n = Math.min(buf.length, chunk.length);
    buf.set(chunk.subarray(0, n));
    if (n < chunk.length) this.#rest = chunk.subarray(n);
    return n;
  }
  async write(data: Uint8Array): Promise<void> {
    // The relay reuses its buffer, so the stream gets its own copy.
    await this.#writer.write(data.slice());
  }
  closeWrite(): Promise<void> {
    return this.stream.closeWrite();
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Cancel/abort reject when the stream already errored; closing is all we want here.
    this.#reader.cancel().catch(() => undefined);
    this.#writer.abort().catch(() => undefined);
    this.stream.close();
  }
}
