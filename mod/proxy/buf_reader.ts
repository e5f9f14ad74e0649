/** A buffered reader over a `Duplex` for the HTTP session: heads, lines and counted bodies. */

import type { Duplex } from "./duplex.ts";
import { HttpHeadError } from "./errors.ts";
import { headEnd } from "./http_head.ts";

const encoder = new TextEncoder();

export class BufReader {
  readonly buf: Uint8Array;
  #start = 0;
  #end = 0;

  constructor(readonly src: Duplex, size: number, initial?: Uint8Array) {
    this.buf = new Uint8Array(Math.max(size, initial?.length ?? 0));
    if (initial) {
      this.buf.set(initial);
      this.#end = initial.length;
    }
  }

  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads more bytes; false at end of stream. */
  async fill(): Promise<boolean> {
    if (this.#start > 0 && this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.buf.length) {
      if (this.#start === 0) {
        throw new HttpHeadError("too_large", `HTTP head or line exceeds ${this.buf.length} bytes`);
      }
      this.buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const n = await this.src.read(this.buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** The next head (through CRLFCRLF) as a copy; null when the stream ended before any byte. */
  async readHead(): Promise<Uint8Array | null> {
    let scanned = this.#start;
    for (;;) {
      const end = headEnd(this.buf, this.#end, Math.max(this.#start, scanned - 3));
      if (end >= 0) {
        const head = this.buf.slice(this.#start, end);
        this.#start = end;
        return head;
      }
      scanned = this.#end;
      const before = this.#start;
      if (!(await this.fill())) {
        if (this.buffered === 0) return null;
        throw new HttpHeadError("closed", "stream ended inside an HTTP head");
      }
      scanned -= before - this.#start; // fill() may have compacted the buffer
    }
  }

  /** The next CRLF-terminated line without its CRLF. */
  async readLine(): Promise<string> {
    for (;;) {
      const i = this.buf.subarray(this.#start, this.#end).indexOf(10);
      if (i >= 0) {
        const line = new TextDecoder().decode(this.buf.subarray(this.#start, this.#start + i))
          .replace(/\r$/, "");
        this.#start += i + 1;
        return line;
      }
      if (!(await this.fill())) {
        throw new HttpHeadError("closed", "stream ended inside a chunked body");
      }
    }
  }

  /** Copies exactly `n` bytes to `dst`. */
  async forward(n: number, dst: Duplex, onBytes: (n: number) => void): Promise<void> {
    while (n > 0) {
      if (this.buffered === 0 && !(await this.fill())) {
        throw new HttpHeadError("closed", "stream ended inside a body");
      }
      const k = Math.min(n, this.buffered);
      await dst.write(this.buf.subarray(this.#start, this.#start + k));
      this.#start += k;
      n -= k;
      onBytes(k);
    }
  }

  /** Copies a chunked body (chunks, last chunk and trailers) to `dst`. */
  async forwardChunked(dst: Duplex, onBytes: (n: number) => void): Promise<void> {
    for (;;) {
      const line = await this.readLine();
      const size = parseInt(line.split(";")[0].trim(), 16);
      if (!Number.isFinite(size) || size < 0) {
        throw new HttpHeadError("malformed", `bad chunk size line ${JSON.stringify(line)}`);
      }
      await dst.write(encoder.encode(line + "\r\n"));
      if (size === 0) {
        for (;;) {
          const t = await this.readLine();
          await dst.write(encoder.encode(t + "\r\n"));
          if (t === "") return;
        }
      }
      await this.forward(size, dst, onBytes);
      await this.readLine();
      await dst.write(encoder.encode("\r\n"));
    }
  }

  /** Copies everything until end of stream. */
  async forwardToEnd(dst: Duplex, onBytes: (n: number) => void): Promise<void> {
    for (;;) {
      if (this.buffered > 0) {
        const k = this.buffered;
        await dst.write(this.buf.subarray(this.#start, this.#end));
        this.#start = this.#end;
        onBytes(k);
      }
      if (!(await this.fill())) return;
    }
  }

  /** Hands out the buffered bytes (for a switch to raw relaying). */
  drain(): Uint8Array {
    const b = this.buf.slice(this.#start, this.#end);
    this.#start = this.#end = 0;
    return b;
  }
}
