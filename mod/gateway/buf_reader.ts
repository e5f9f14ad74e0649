/** A buffered reader over a byte stream, with bounded head reads and per-read deadlines. */

import { HttpParseError } from "./errors.ts";
import { readWithTimeout, withTimeout } from "./wire.ts";

export class BufReader {
  #buf: Uint8Array = new Uint8Array(0);
  #off = 0;
  #eof = false;
  #pending?: Promise<boolean>;

  constructor(readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  get buffered(): number {
    return this.#buf.length - this.#off;
  }

  /** The buffered bytes, left in place. */
  peek(): Uint8Array {
    return this.#buf.subarray(this.#off);
  }

  /** Reads once more into the buffer; false at end of stream. */
  fillMore(timeoutMs: number): Promise<boolean> {
    return this.#fill(timeoutMs);
  }

  /** Removes and returns whatever is buffered. */
  takeBuffered(): Uint8Array {
    const out = this.#buf.subarray(this.#off);
    this.#buf = new Uint8Array(0);
    this.#off = 0;
    return out;
  }

  /**
   * Starts one read in the background and returns it (true: data arrived, false: end of
   * stream). The next read of this reader waits for it instead of reading again. Used to
   * notice an idle pooled connection being closed by its peer.
   */
  watch(): Promise<boolean> {
    this.#pending ??= this.#readOnce(0);
    return this.#pending;
  }

  /** Reads more into the buffer; false at end of stream. */
  #fill(timeoutMs: number): Promise<boolean> {
    const p = this.#pending;
    if (!p) return this.#readOnce(timeoutMs);
    this.#pending = undefined;
    return withTimeout(p, timeoutMs, "read");
  }

  async #readOnce(timeoutMs: number): Promise<boolean> {
    if (this.#eof) return false;
    for (;;) {
      const { value, done } = await readWithTimeout(this.reader, timeoutMs);
      if (done) {
        this.#eof = true;
        return false;
      }
      if (value.length === 0) continue;
      const rest = this.#buf.length - this.#off;
      if (rest === 0) {
        this.#buf = value;
      } else {
        const merged = new Uint8Array(rest + value.length);
        merged.set(this.#buf.subarray(this.#off));
        merged.set(value, rest);
        this.#buf = merged;
      }
      this.#off = 0;
      return true;
    }
  }

  /**
   * Reads a message head up to and including the blank line. Returns null on end of stream
   * before any byte. The first byte may take `idleMs`; the whole head then `headMs`.
   * Throws HttpParseError(tooLarge) past `maxBytes`, and on end of stream inside a head.
   */
  async readHead(maxBytes: number, idleMs: number, headMs: number): Promise<Uint8Array | null> {
    if (this.buffered === 0 && !(await this.#fill(idleMs))) return null;
    const deadline = Date.now() + headMs;
    let scanFrom = this.#off;
    for (;;) {
      const end = findHeadEnd(this.#buf, scanFrom);
      if (end >= 0) {
        if (end - this.#off > maxBytes) throw new HttpParseError("message head too large", true);
        const head = this.#buf.subarray(this.#off, end);
        this.#off = end;
        return head;
      }
      if (this.buffered > maxBytes) throw new HttpParseError("message head too large", true);
      scanFrom = Math.max(this.#off, this.#buf.length - 3);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DOMException(`message head not complete within ${headMs} ms`, "TimeoutError");
      }
      const off = this.#off;
      if (!(await this.#fill(left))) {
        throw new HttpParseError("connection closed inside a message head");
      }
      scanFrom -= off - this.#off;
    }
  }

  /** Reads one CRLF-terminated line (without the CRLF), at most `max` bytes. */
  async readLine(max: number, timeoutMs: number): Promise<string> {
    let scanFrom = this.#off;
    for (;;) {
      const nl = this.#buf.indexOf(10, scanFrom);
      if (nl >= 0) {
        let end = nl;
        if (end > this.#off && this.#buf[end - 1] === 13) end--;
        const line = new TextDecoder().decode(this.#buf.subarray(this.#off, end));
        this.#off = nl + 1;
        return line;
      }
      if (this.buffered > max) throw new HttpParseError("line too long", true);
      const consumed = this.#buf.length - this.#off;
      if (!(await this.#fill(timeoutMs))) {
        throw new HttpParseError("connection closed inside a line");
      }
      scanFrom = this.#off + consumed;
    }
  }

  /** Up to `max` bytes, from the buffer first; null at end of stream. */
  async read(max: number, timeoutMs: number): Promise<Uint8Array | null> {
    if (this.buffered === 0 && !(await this.#fill(timeoutMs))) return null;
    const n = Math.min(max, this.buffered);
    const out = this.#buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return out;
  }
}

/** Index just after "\r\n\r\n" (or "\n\n") at or after `from`, else -1. */
function findHeadEnd(buf: Uint8Array, from: number): number {
  for (let i = from; i < buf.length; i++) {
    if (buf[i] !== 10) continue;
    if (i >= 1 && buf[i - 1] === 10) return i + 1;
    if (i >= 2 && buf[i - 1] === 13 && buf[i - 2] === 10) return i + 1;
  }
  return -1;
}
