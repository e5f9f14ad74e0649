/**
 * Idle HTTP/1.1 upstream connections kept for reuse, per endpoint. An idle connection keeps
 * one read pending, so a peer that closes it is noticed and the connection dropped.
 */

import type { BufReader } from "./buf_reader.ts";
import type { UpstreamWire } from "./wire.ts";

export interface PooledConn {
  wire: UpstreamWire;
  reader: ReadableStreamDefaultReader<Uint8Array>;
  buf: BufReader;
}

interface Entry {
  conn: PooledConn;
  since: number;
  dead: boolean;
}

export interface UpstreamPoolOptions {
  /** How long a connection may stay idle. */
  idleMs: number;
  /** Idle connections kept per endpoint. */
  maxPerEndpoint: number;
  now?: () => number;
}

export class UpstreamPool {
  #idle = new Map<string, Entry[]>();
  #closed = false;
  #now: () => number;
  #timer?: ReturnType<typeof setInterval>;

  constructor(private readonly options: UpstreamPoolOptions) {
    this.#now = options.now ?? Date.now;
  }

  /** Number of idle connections (all endpoints). */
  get size(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  /** The most recently used live idle connection to `endpoint`, if any. */
  take(endpoint: string): PooledConn | undefined {
    const list = this.#idle.get(endpoint);
    if (!list) return undefined;
    const limit = this.#now() - this.options.idleMs;
    for (let e = list.pop(); e; e = list.pop()) {
      if (!e.dead && e.since >= limit) {
        if (list.length === 0) this.#idle.delete(endpoint);
        return e.conn;
      }
      discard(e.conn);
    }
    this.#idle.delete(endpoint);
    return undefined;
  }

  /** Keeps a connection whose last exchange ended cleanly (nothing left unread). */
  put(endpoint: string, conn: PooledConn): void {
    if (this.#closed || this.options.idleMs <= 0 || conn.buf.buffered > 0) return discard(conn);
    let list = this.#idle.get(endpoint);
    if (!list) this.#idle.set(endpoint, list = []);
    this.#sweep(list);
    if (list.length >= this.options.maxPerEndpoint) discard(list.shift()!.conn);
    const entry: Entry = { conn, since: this.#now(), dead: false };
    list.push(entry);
    this.#timer ??= setInterval(() => this.#sweepAll(), Math.max(1000, this.options.idleMs));
    // Anything arriving on an idle connection (end of stream, stray bytes) makes it unusable.
    conn.buf.watch().then(() => this.#drop(endpoint, entry), () => this.#drop(endpoint, entry));
  }

  #drop(endpoint: string, entry: Entry): void {
    const list = this.#idle.get(endpoint);
    const i = list?.indexOf(entry) ?? -1;
    if (i < 0) return;
    entry.dead = true;
    list!.splice(i, 1);
    if (list!.length === 0) this.#idle.delete(endpoint);
    discard(entry.conn);
  }

  #sweep(list: Entry[]): void {
    const limit = this.#now() - this.options.idleMs;
    while (list.length && (list[0].dead || list[0].since < limit)) discard(list.shift()!.conn);
  }

  #sweepAll(): void {
    for (const [k, list] of this.#idle) {
      this.#sweep(list);
      if (list.length === 0) this.#idle.delete(k);
    }
    if (this.#idle.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Closes every idle connection; later put() calls close theirs. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const list of this.#idle.values()) for (const e of list) discard(e.conn);
    this.#idle.clear();
  }
}

function discard(conn: PooledConn): void {
  conn.wire.close();
  conn.reader.cancel().catch(() => {});
}
