/**
 * Our circuit relay v2 server (the hop side), speaking the standard protocol so libp2p's
 * circuit relay transport works unchanged, with what the library server lacks for a data
 * plane: no per-circuit time or data limits, end-to-end backpressure with bounded buffers
 * (the library's relay kept every forwarded byte in memory for the life of a circuit), and
 * reservations and circuits only for verified cluster nodes.
 */

import type { Connection, Stream } from "@libp2p/interface";
import { peerIdFromMultihash } from "@libp2p/peer-id";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { Logger } from "../log/mod.ts";
import { WireError } from "./errors.ts";
import type { TunnelMetrics } from "./metrics.ts";
import {
  hopStatus,
  HopType,
  readMessage,
  RelayStatus,
  STOP_PROTOCOL,
  stopConnect,
  StopType,
} from "./relay_pb.ts";
import { closeStream, deadline, sendAll, StreamReader } from "./stream_io.ts";

export interface RelayServerHost {
  /** The node name of a verified cluster peer, waiting briefly for its claim. */
  memberNode(peerId: string): Promise<string | undefined>;
  /** Open direct (non-relayed) connections to a peer. */
  directConnections(peerId: string): Connection[];
  /** Addresses to hand out with reservations (the relay's announced addresses). */
  addresses(): Multiaddr[];
}

export interface RelayServerOptions {
  maxReservations: number;
  maxCircuits: number;
  reservationTtlMs: number;
  /** Limit for each handshake step (read a request, open the stop stream). */
  hopTimeoutMs: number;
}

export const RELAY_SERVER_DEFAULTS: RelayServerOptions = {
  maxReservations: 4096,
  maxCircuits: 4096,
  reservationTtlMs: 2 * 60 * 60 * 1000,
  hopTimeoutMs: 10_000,
};

export class RelayServer {
  #reservations = new Map<string, number>();
  #circuits = 0;

  constructor(
    readonly host: RelayServerHost,
    readonly logger: Logger,
    readonly metrics: TunnelMetrics,
    readonly opts: RelayServerOptions,
    readonly shutdown: AbortSignal,
    readonly now: () => number = Date.now,
  ) {}

  get circuits(): number {
    return this.#circuits;
  }

  get reservations(): number {
    return this.#reservations.size;
  }

  /** Handles one inbound hop stream. Never throws. */
  async handleHop(stream: Stream, conn: Connection): Promise<void> {
    const reader = new StreamReader(stream);
    const d = deadline(this.opts.hopTimeoutMs, this.shutdown);
    let spliced = false;
    try {
      const src = conn.remotePeer.toString();
      const req = await readMessage((n) => reader.readExactly(n, d.signal));
      const type = req.varints.get(1);
      if (conn.remoteAddr.toString().includes("/p2p-circuit")) {
        return this.#answer(stream, RelayStatus.PERMISSION_DENIED);
      }
      if (await this.host.memberNode(src) === undefined) {
        this.metrics.rejects.inc({ reason: "relay-non-member" });
        return this.#answer(stream, RelayStatus.PERMISSION_DENIED);
      }
      if (type === HopType.RESERVE) return this.#reserve(stream, src);
      if (type !== HopType.CONNECT) return this.#answer(stream, RelayStatus.UNEXPECTED_MESSAGE);
      const peerField = req.bytes.get(2)?.[0];
      const dstId = peerField ? decodePeerId(peerField) : undefined;
      if (!dstId) return this.#answer(stream, RelayStatus.MALFORMED_MESSAGE);
      const expires = this.#reservations.get(dstId);
      if (expires === undefined || expires < this.now()) {
        return this.#answer(stream, RelayStatus.NO_RESERVATION);
      }
      if (this.#circuits >= this.opts.maxCircuits) {
        return this.#answer(stream, RelayStatus.RESOURCE_LIMIT_EXCEEDED);
      }
      const dstConn = this.host.directConnections(dstId)[0];
      if (!dstConn) return this.#answer(stream, RelayStatus.NO_RESERVATION);
      const stop = await this.#stop(dstConn, conn, d.signal);
      if (!stop) return this.#answer(stream, RelayStatus.CONNECTION_FAILED);
      d.clear();
      stream.send(hopStatus(RelayStatus.OK));
      spliced = true;
      await this.#splice(stream, reader, stop.stream, stop.reader);
    } catch (err) {
      this.logger.debug("hop stream failed", { peerId: conn.remotePeer.toString(), error: err });
      if (!spliced) stream.abort(err instanceof Error ? err : new WireError(String(err)));
    } finally {
      d.clear();
      reader.detach();
    }
  }

  async #answer(stream: Stream, status: number): Promise<void> {
    try {
      stream.send(hopStatus(status));
    } catch {
      // The peer left; closing below is all there is to do.
    }
    await closeStream(stream);
  }

  async #reserve(stream: Stream, src: string): Promise<void> {
    const t = this.now();
    for (const [p, exp] of this.#reservations) if (exp < t) this.#reservations.delete(p);
    if (!this.#reservations.has(src) && this.#reservations.size >= this.opts.maxReservations) {
      return this.#answer(stream, RelayStatus.RESERVATION_REFUSED);
    }
    const expires = t + this.opts.reservationTtlMs;
    this.#reservations.set(src, expires);
    const addrs = this.host.addresses().map((a) => a.bytes);
    stream.send(hopStatus(RelayStatus.OK, { expireSec: Math.floor(expires / 1000), addrs }));
    await closeStream(stream);
  }

  /** Opens the stop stream to the destination; returns it once it answered OK. */
  async #stop(dstConn: Connection, srcConn: Connection, signal: AbortSignal) {
    const stream = await dstConn.newStream(STOP_PROTOCOL, {
      signal,
      maxOutboundStreams: this.opts.maxCircuits,
    });
    const reader = new StreamReader(stream);
    try {
      stream.send(stopConnect(srcConn.remotePeer.toMultihash().bytes));
      const res = await readMessage((n) => reader.readExactly(n, signal));
      if (res.varints.get(1) === StopType.STATUS && res.varints.get(4) === RelayStatus.OK) {
        return { stream, reader };
      }
    } catch (err) {
      this.logger.debug("stop stream failed", {
        peerId: dstConn.remotePeer.toString(),
        error: err,
      });
    }
    reader.detach();
    stream.abort(new WireError("stop handshake failed"));
    return undefined;
  }

  /** Copies both ways with bounded buffers until both sides ended; resets both on error. */
  async #splice(a: Stream, ra: StreamReader, b: Stream, rb: StreamReader): Promise<void> {
    this.#circuits++;
    this.metrics.relayCircuits.set(this.#circuits);
    const fail = (err: unknown) => {
      const e = err instanceof Error ? err : new WireError(String(err));
      for (const s of [a, b]) if (s.status === "open" || s.status === "closing") s.abort(e);
    };
    const onShutdown = () => fail(new WireError("relay stopping"));
    this.shutdown.addEventListener("abort", onShutdown, { once: true });
    const copy = async (from: StreamReader, to: Stream) => {
      for (;;) {
        const c = await from.read();
        if (c === null) break;
        await sendAll(to, c);
        this.metrics.relayBytes.inc(undefined, c.byteLength);
      }
      await to.close();
    };
    try {
      await Promise.all([
        copy(ra, b).catch((e) => {
          fail(e);
          throw e;
        }),
        copy(rb, a).catch((e) => {
          fail(e);
          throw e;
        }),
      ]);
    } catch (err) {
      this.logger.debug("circuit ended with error", { error: err });
    } finally {
      this.shutdown.removeEventListener("abort", onShutdown);
      rb.detach();
      await Promise.all([closeStream(a), closeStream(b)]);
      this.#circuits--;
      this.metrics.relayCircuits.set(this.#circuits);
    }
  }
}

function decodePeerId(peerField: Uint8Array): string | undefined {
  try {
    const idBytes = readFirstBytesField(peerField);
    if (!idBytes) return undefined;
    return peerIdFromMultihash(decodeMultihash(idBytes)).toString();
  } catch {
    // Not a valid peer ID: the caller answers MALFORMED_MESSAGE.
    return undefined;
  }
}

function readFirstBytesField(b: Uint8Array): Uint8Array | undefined {
  // Peer{id = 1 (bytes), addrs = 2 (bytes)}: the id is field 1.
  if (b[0] !== 0x0a) return undefined;
  let len = 0;
  let mul = 1;
  let o = 1;
  for (;;) {
    const x = b[o++];
    len += (x & 0x7f) * mul;
    if (x < 0x80) break;
    mul *= 0x80;
    if (o > 4) return undefined;
  }
  return b.subarray(o, o + len);
}

/** A multihash as the MultihashDigest shape `peerIdFromMultihash` expects. */
function decodeMultihash(bytes: Uint8Array) {
  const code = bytes[0];
  const size = bytes[1];
  if (bytes.length !== size + 2) throw new WireError("bad multihash");
  return { code, size, digest: Uint8Array.from(bytes.subarray(2)), bytes: Uint8Array.from(bytes) };
}
