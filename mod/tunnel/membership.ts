/**
 * Membership: every new connection exchanges signed claims (`/edgemesh/claim/1.0.0`; the
 * dialer speaks first). A peer whose own claim is missing, badly signed, for a name that is
 * not a cluster node, in conflict with a pinned binding, or (with a certificate identity)
 * without a valid attestation is refused: disconnected and denied by the gater for a while.
 */

import type { Connection, Stream } from "@libp2p/interface";
import { type Logger, LogRateLimiter } from "../log/mod.ts";
import {
  type Claim,
  CLAIM_PROTOCOL,
  decodeClaimMessage,
  encodeClaimMessage,
  MAX_CLAIM_MESSAGE_BYTES,
} from "./claim.ts";
import type { ClaimDirectory } from "./directory.ts";
import { ClaimError, WireError } from "./errors.ts";
import type { TunnelMetrics } from "./metrics.ts";
import { closeStream, deadline, StreamReader } from "./stream_io.ts";
import type { TaskSet } from "./tasks.ts";

export const CLAIM_TIMEOUT_MS = 5000;
/** How long a refused peer stays denied by the gater. */
export const DENY_MS = 60_000;

export interface MembershipDeps {
  dir: ClaimDirectory;
  logger: Logger;
  metrics: TunnelMetrics;
  tasks: TaskSet;
  now: () => number;
  shutdown: AbortSignal;
  /** Closes every connection to a peer. */
  hangUp(peerId: string): Promise<void>;
  /** Forward the claims of other nodes we hold (default true; false sends only our own). */
  forwardClaims?: boolean;
}

export class Membership {
  #verified = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  #denied = new Map<string, number>();
  #limiter = new LogRateLimiter(5, 10_000);

  constructor(readonly deps: MembershipDeps) {}

  get dir(): ClaimDirectory {
    return this.deps.dir;
  }

  /** True for a peer refused recently or pinned to a node that left the cluster. */
  isDenied(peerId: string): boolean {
    const until = this.#denied.get(peerId);
    if (until !== undefined) {
      if (until > this.deps.now()) return true;
      this.#denied.delete(peerId);
    }
    return this.deps.dir.isExpelled(peerId);
  }

  #entry(peerId: string) {
    let v = this.#verified.get(peerId);
    if (!v) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      v = { promise, resolve };
      this.#verified.set(peerId, v);
    }
    return v;
  }

  /** The node name of a verified peer, waiting up to `ms` for its claim. */
  async waitVerified(peerId: string, ms: number): Promise<string | undefined> {
    const known = this.deps.dir.nodeOf(peerId);
    if (known !== undefined) return known;
    const sd = this.deps.shutdown;
    if (sd.aborted) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    await Promise.race([
      this.#entry(peerId).promise,
      new Promise<void>((r) => {
        timer = setTimeout(r, ms);
        onAbort = () => r();
        sd.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    clearTimeout(timer);
    if (onAbort) sd.removeEventListener("abort", onAbort);
    return this.deps.dir.nodeOf(peerId);
  }

  /** Releases every waiter (on stop). */
  releaseWaiters(): void {
    for (const v of this.#verified.values()) v.resolve();
    this.#verified.clear();
  }

  /** Called for every new connection: claims go out, or are awaited from the dialer. */
  onConnectionOpen(conn: Connection): void {
    const peer = conn.remotePeer.toString();
    if (this.isDenied(peer)) {
      void conn.close().catch(() => conn.abort(new ClaimError("unknown-node", "denied")));
      return;
    }
    if (conn.direction === "outbound") {
      this.deps.tasks.track(this.exchange(conn), true);
      return;
    }
    if (this.deps.dir.nodeOf(peer) !== undefined) return;
    this.deps.tasks.track(
      this.waitVerified(peer, CLAIM_TIMEOUT_MS).then((node) => {
        if (node === undefined && conn.status === "open" && !this.deps.shutdown.aborted) {
          this.refuse(peer, "no-claim", "no claim received");
        }
      }),
    );
  }

  refuse(peerId: string, reason: string, message: string): void {
    this.deps.metrics.claimsRefused.inc({ reason });
    this.#denied.set(peerId, this.deps.now() + DENY_MS);
    const n = this.#limiter.allow(`refuse:${reason}`);
    if (n !== undefined) {
      this.deps.logger.warn("peer refused", { peerId, reason, message, suppressed: n });
    }
    this.deps.tasks.track(this.deps.hangUp(peerId));
  }

  async #process(peerId: string, claims: Claim[]): Promise<void> {
    const own = claims[0];
    if (!own || own.peerId !== peerId) {
      this.refuse(peerId, "peer-mismatch", "the first claim is not the peer's own");
      return;
    }
    const { verdict, detail } = await this.deps.dir.check(own);
    if (verdict !== "ok") {
      const attested = this.deps.dir.options.verifier !== undefined;
      const hint = verdict === "conflict" && !attested
        ? `; if node "${own.node}" was reinstalled with a new key, remove its entry from ${this.deps.dir.pins.path}`
        : verdict === "attestation"
        ? "; with modules.edgeTunnel.identity set, every node must sign its claim with a node certificate of the same CA"
        : "";
      this.refuse(
        peerId,
        verdict,
        `claim for node "${own.node}" refused: ${verdict}${detail ? `: ${detail}` : ""}${hint}`,
      );
      return;
    }
    this.#entry(peerId).resolve();
    for (const c of claims.slice(1)) {
      if (c.peerId === this.deps.dir.self.peerId) continue;
      const r = await this.deps.dir.check(c);
      if (r.verdict === "ok") {
        this.#entry(c.peerId).resolve();
      } else if (r.verdict !== "unknown-node") {
        this.deps.logger.debug("forwarded claim ignored", {
          from: peerId,
          node: c.node,
          peerId: c.peerId,
          verdict: r.verdict,
          detail: r.detail,
        });
      }
    }
  }

  async #read(reader: StreamReader, signal: AbortSignal): Promise<Claim[]> {
    const lb = await reader.readExactly(4, signal);
    const len = new DataView(lb.buffer, lb.byteOffset, 4).getUint32(0);
    if (len > MAX_CLAIM_MESSAGE_BYTES) {
      throw new WireError(`claim message of ${len} bytes too large`);
    }
    return decodeClaimMessage(await reader.readExactly(len, signal));
  }

  /** Sends our claims on a new stream and processes the answer. */
  async exchange(conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString();
    const d = deadline(CLAIM_TIMEOUT_MS, this.deps.shutdown);
    let stream: Stream | undefined;
    let reader: StreamReader | undefined;
    try {
      stream = await conn.newStream(CLAIM_PROTOCOL, {
        signal: d.signal,
        runOnLimitedConnection: true,
      });
      reader = new StreamReader(stream);
      stream.send(encodeClaimMessage(this.#outgoing()));
      await this.#process(peer, await this.#read(reader, d.signal));
    } catch (err) {
      if (this.deps.shutdown.aborted || conn.status !== "open") return;
      if (this.deps.dir.nodeOf(peer) === undefined) {
        this.refuse(
          peer,
          err instanceof ClaimError ? err.reason : "no-claim",
          `claim exchange failed: ${err}`,
        );
      } else {
        this.deps.logger.debug("claim refresh failed", { peerId: peer, error: err });
      }
    } finally {
      d.clear();
      reader?.detach();
      if (stream) await closeStream(stream);
    }
  }

  /** Our own claim first, then (unless turned off) every other claim we hold. */
  #outgoing() {
    return this.deps.forwardClaims === false ? [this.deps.dir.self] : this.deps.dir.all();
  }

  /** Handles an inbound claim stream: read theirs, answer with ours once they are verified. */
  async answer(stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString();
    const reader = new StreamReader(stream);
    const d = deadline(CLAIM_TIMEOUT_MS, this.deps.shutdown);
    try {
      await this.#process(peer, await this.#read(reader, d.signal));
      if (this.deps.dir.nodeOf(peer) !== undefined) {
        stream.send(encodeClaimMessage(this.#outgoing()));
      }
    } catch (err) {
      if (!this.deps.shutdown.aborted && this.deps.dir.nodeOf(peer) === undefined) {
        this.refuse(
          peer,
          err instanceof ClaimError ? err.reason : "no-claim",
          `bad claim message: ${err}`,
        );
      }
    } finally {
      d.clear();
      reader.detach();
      await closeStream(stream);
    }
  }
}
