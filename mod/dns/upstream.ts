/**
 * Exchanges one query with one upstream server: UDP over a shared socket per address family
 * (random IDs, answers matched by ID, source and question), or TCP (one connection per
 * exchange). Every exchange is bounded by a timeout and the shutdown signal.
 */

import { UpstreamError } from "./errors.ts";
import type { Upstream } from "./options.ts";
import { sameQuestion } from "./wire.ts";

interface Pending {
  upstream: Upstream;
  query: Uint8Array;
  questionEnd: number;
  resolve(resp: Uint8Array): void;
  reject(err: Error): void;
}

export class UpstreamClient {
  #sockets = new Map<4 | 6, Deno.DatagramConn>();
  #loops: Promise<void>[] = [];
  #pending = new Map<string, Pending>();
  #tcp = new Set<Deno.TcpConn>();
  #closed = false;

  constructor(
    private readonly random: (n: number) => number = (n) => Math.floor(Math.random() * n),
  ) {}

  #socket(family: 4 | 6): Deno.DatagramConn {
    let s = this.#sockets.get(family);
    if (s) return s;
    s = Deno.listenDatagram({
      hostname: family === 4 ? "0.0.0.0" : "::",
      port: 0,
      transport: "udp",
    });
    this.#sockets.set(family, s);
    this.#loops.push(this.#receiveLoop(s));
    return s;
  }

  async #receiveLoop(sock: Deno.DatagramConn): Promise<void> {
    const buf = new Uint8Array(65535);
    while (!this.#closed) {
      let msg: Uint8Array;
      let addr: Deno.Addr;
      try {
        [msg, addr] = await sock.receive(buf);
      } catch (err) {
        if (this.#closed || err instanceof Deno.errors.BadResource) return;
        continue; // e.g. ICMP errors surfaced on some platforms
      }
      if (msg.length < 12 || !(msg[2] & 0x80)) continue;
      const a = addr as Deno.NetAddr;
      const key = `${(msg[0] << 8) | msg[1]}|${a.hostname}|${a.port}`;
      const p = this.#pending.get(key);
      if (!p || !sameQuestion(p.query, p.questionEnd, msg, p.questionEnd)) continue;
      this.#pending.delete(key);
      p.resolve(msg.slice());
    }
  }

  /** Sends `query` (its ID is overwritten) over UDP and waits for the matching answer. */
  exchangeUdp(
    up: Upstream,
    query: Uint8Array,
    questionEnd: number,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    if (this.#closed) {
      return Promise.reject(new UpstreamError("network", up.label, "forwarder stopped"));
    }
    let sock: Deno.DatagramConn;
    try {
      sock = this.#socket(up.hostname.includes(":") ? 6 : 4);
    } catch (err) {
      return Promise.reject(
        new UpstreamError(
          "network",
          up.label,
          `cannot open a UDP socket: ${(err as Error)?.message ?? err}`,
          {
            cause: err,
          },
        ),
      );
    }
    let id = 0;
    let key = "";
    for (let i = 0; i < 8; i++) {
      id = this.random(65536);
      key = `${id}|${up.hostname}|${up.port}`;
      if (!this.#pending.has(key)) break;
    }
    if (this.#pending.has(key)) {
      return Promise.reject(new UpstreamError("network", up.label, "too many queries in flight"));
    }
    const msg = query.slice();
    msg[0] = id >> 8;
    msg[1] = id & 0xff;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(key);
        reject(new UpstreamError("timeout", up.label, `no answer within ${timeoutMs} ms (udp)`));
      }, timeoutMs);
      this.#pending.set(key, {
        upstream: up,
        query: msg,
        questionEnd,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      sock.send(msg, { transport: "udp", hostname: up.hostname, port: up.port }).catch((err) => {
        if (!this.#pending.has(key)) return;
        this.#pending.delete(key);
        clearTimeout(timer);
        reject(
          new UpstreamError("network", up.label, `send failed: ${err?.message ?? err}`, {
            cause: err,
          }),
        );
      });
    });
  }

  /** One query over a fresh TCP connection (length-prefixed). */
  async exchangeTcp(
    up: Upstream,
    query: Uint8Array,
    questionEnd: number,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    if (this.#closed) throw new UpstreamError("network", up.label, "forwarder stopped");
    let conn: Deno.TcpConn | undefined;
    let timedOut = false;
    let onTimeout: (() => void) | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(conn);
      onTimeout?.();
    }, timeoutMs);
    try {
      // A connect to a silent host can hang for minutes: race it against the timer.
      const connecting = Deno.connect({ hostname: up.hostname, port: up.port });
      // A connection that completes after the deadline is closed at once; a failure is the race's.
      connecting.then((c) => timedOut && closeQuietly(c), () => {});
      conn = await Promise.race([
        connecting,
        new Promise<never>((_, reject) => (onTimeout = () => reject(new Error("timeout")))),
      ]);
      if (timedOut) {
        conn.close();
        throw new Error("timeout");
      }
      this.#tcp.add(conn);
      const id = this.random(65536);
      const framed = new Uint8Array(query.length + 2);
      framed[0] = query.length >> 8;
      framed[1] = query.length & 0xff;
      framed.set(query, 2);
      framed[2] = id >> 8;
      framed[3] = id & 0xff;
      await writeAll(conn, framed);
      const head = await readExactly(conn, 2);
      const len = (head[0] << 8) | head[1];
      const resp = await readExactly(conn, len);
      if (
        len < 12 || ((resp[0] << 8) | resp[1]) !== id ||
        !sameQuestion(framed.subarray(2), questionEnd, resp, questionEnd)
      ) {
        throw new UpstreamError("malformed", up.label, "answer does not match the query (tcp)");
      }
      return resp;
    } catch (err) {
      if (err instanceof UpstreamError) throw err;
      if (timedOut) {
        throw new UpstreamError("timeout", up.label, `no answer within ${timeoutMs} ms (tcp)`);
      }
      throw new UpstreamError("network", up.label, `tcp: ${(err as Error)?.message ?? err}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
      if (conn) {
        this.#tcp.delete(conn);
        closeQuietly(conn);
      }
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  get inflight(): number {
    return this.#pending.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#tcp) {
      closeQuietly(c);
    }
    for (const s of this.#sockets.values()) s.close();
    await Promise.allSettled(this.#loops);
    for (const [key, p] of this.#pending) {
      this.#pending.delete(key);
      p.reject(new UpstreamError("network", p.upstream.label, "forwarder stopped"));
    }
  }
}

/** Closes a connection that a timer or the peer may already have closed. */
export function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  }
}

export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

export async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await conn.read(out.subarray(off));
    if (r === null) throw new Error(`connection closed after ${off} of ${n} bytes`);
    off += r;
  }
  return out;
}
