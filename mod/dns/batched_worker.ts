/**
 * The batched UDP worker: blocks in `recvmmsg` (up to 64 datagrams per call) on a socket the
 * main thread bound, answers cluster names from a zone snapshot into send slots, and sends
 * them with one `sendmmsg`. Everything else (forwarded names, aliases, pods, malformed
 * input) goes to the main thread, which answers with `sendto` on the same socket.
 *
 * Messages in: start {fd, control, snapshot, maxUdpPayload}, zone {snapshot}.
 * Messages out: ready, queries {packed: (u16 length, u8 address length, message, sockaddr)*},
 * stats {counts, latencies}, error {message}, stopped.
 * `control` is an Int32Array over a SharedArrayBuffer: [0] stop flag, [1] zone generation.
 */
/// <reference lib="deno.worker" />

import {
  EAGAIN,
  EINTR,
  errno,
  type Libc,
  MSG_WAITFORONE,
  openLibc,
  SIZEOF_IOVEC,
  SIZEOF_MMSGHDR,
  SIZEOF_SOCKADDR_STORAGE,
} from "./ffi_libc.ts";
import { countKey } from "./metrics.ts";
import { CLASS_ANY, CLASS_IN, isFailure, parseQuery, rcodeName, TYPE, typeName } from "./wire.ts";
import { patchTemplate, spliceTemplate, truncateIfNeeded, udpLimit } from "./response.ts";
import type { ZoneSnapshot } from "./zone.ts";

const BATCH = 64;
const SLOT = 4096;
const NAME = SIZEOF_SOCKADDR_STORAGE;
const STATS_MS = 250;

interface Ring {
  data: Uint8Array;
  names: Uint8Array;
  iov: Uint8Array;
  hdr: Uint8Array;
  hdrView: DataView;
}

function ptr(b: Uint8Array, offset = 0): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b))) + BigInt(offset);
}

/** Message headers pointing at slots; the typed arrays stay referenced for the worker's life. */
function ring(): Ring {
  const r = {
    data: new Uint8Array(BATCH * SLOT),
    names: new Uint8Array(BATCH * NAME),
    iov: new Uint8Array(BATCH * SIZEOF_IOVEC),
    hdr: new Uint8Array(BATCH * SIZEOF_MMSGHDR),
  };
  const iov = new DataView(r.iov.buffer);
  const hdr = new DataView(r.hdr.buffer);
  const data = ptr(r.data), names = ptr(r.names), iovs = ptr(r.iov);
  for (let i = 0; i < BATCH; i++) {
    iov.setBigUint64(i * SIZEOF_IOVEC, data + BigInt(i * SLOT), true);
    iov.setBigUint64(i * SIZEOF_IOVEC + 8, BigInt(SLOT), true);
    const h = i * SIZEOF_MMSGHDR;
    hdr.setBigUint64(h, names + BigInt(i * NAME), true); // msg_name
    hdr.setUint32(h + 8, NAME, true); // msg_namelen
    hdr.setBigUint64(h + 16, iovs + BigInt(i * SIZEOF_IOVEC), true); // msg_iov
    hdr.setBigUint64(h + 24, 1n, true); // msg_iovlen
  }
  return { ...r, hdrView: hdr };
}

class BatchedWorker {
  #libc: Libc = openLibc();
  #rx = ring();
  #tx = ring();
  #txIov: DataView;
  #snapshot: ZoneSnapshot;
  #suffix: string;
  #podSuffix: string;
  #counts = new Map<string, number>();
  #latencies: number[] = [];
  #lastStats = performance.now();
  #slot = 0;

  constructor(
    private readonly fd: number,
    private readonly control: Int32Array,
    snapshot: ZoneSnapshot,
    private readonly maxUdpPayload: number,
  ) {
    this.#snapshot = snapshot;
    this.#suffix = "." + snapshot.domain;
    this.#podSuffix = ".pod." + snapshot.domain;
    this.#txIov = new DataView(this.#tx.iov.buffer);
  }

  setSnapshot(s: ZoneSnapshot): void {
    if (s.generation >= this.#snapshot.generation) this.#snapshot = s;
  }

  #alloc = (n: number): Uint8Array => {
    const at = this.#slot * SLOT;
    return n <= SLOT ? this.#tx.data.subarray(at, at + n) : new Uint8Array(n);
  };

  /** A response written into send slot `#slot`, or null for the main thread. */
  #answer(msg: Uint8Array): Uint8Array | null {
    const p = parseQuery(msg);
    if (isFailure(p) || (p.edns && p.ednsVersion !== 0)) return null;
    const qt = p.qtype;
    if (
      (p.qclass !== CLASS_IN && p.qclass !== CLASS_ANY) || qt === TYPE.AXFR || qt === TYPE.IXFR ||
      qt === TYPE.OPT
    ) {
      return null;
    }
    const snap = this.#snapshot;
    const e = snap.names.get(p.qname);
    const ours = this.maxUdpPayload;
    let resp: Uint8Array;
    if (e) {
      if (e.cname && qt !== TYPE.CNAME && qt !== TYPE.ANY) return null;
      resp = patchTemplate(e.answers.get(qt) ?? e.nodata, msg, p, ours, this.#alloc);
    } else if (
      (p.qname === snap.domain || p.qname.endsWith(this.#suffix)) &&
      !p.qname.endsWith(this.#podSuffix)
    ) {
      resp = spliceTemplate(snap.nxdomain, msg, p, ours, this.#alloc);
    } else {
      return null;
    }
    resp = truncateIfNeeded(resp, msg, p, udpLimit(p, ours), ours);
    const key = countKey(typeName(qt), rcodeName(resp[3] & 0xf), "cluster", "udp");
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    return resp;
  }

  async run(): Promise<void> {
    const rx = this.#rx, tx = this.#tx, libc = this.#libc;
    while (Atomics.load(this.control, 0) === 0) {
      for (let i = 0; i < BATCH; i++) rx.hdrView.setUint32(i * SIZEOF_MMSGHDR + 8, NAME, true);
      const n = libc.symbols.recvmmsg(this.fd, rx.hdr, BATCH, MSG_WAITFORONE, null);
      if (n < 0) {
        const e = errno(libc);
        if (e !== EAGAIN && e !== EINTR) {
          self.postMessage({ type: "error", message: `recvmmsg failed: errno ${e}` });
          break;
        }
        await this.#flushStats(true);
        continue;
      }
      // A catalog change since the table we hold: wait (yielding) until its snapshot arrives.
      for (let i = 0; Atomics.load(this.control, 1) > this.#snapshot.generation && i < 1000; i++) {
        await tick();
      }
      const t0 = performance.now();
      this.#slot = 0;
      let fwd = new Uint8Array(0);
      let fwdLen = 0;
      for (let i = 0; i < n; i++) {
        const h = i * SIZEOF_MMSGHDR;
        const len = rx.hdrView.getUint32(h + 56, true);
        const namelen = Math.min(NAME, rx.hdrView.getUint32(h + 8, true));
        const msg = rx.data.subarray(i * SLOT, i * SLOT + Math.min(len, SLOT));
        const name = rx.names.subarray(i * NAME, i * NAME + namelen);
        let resp = len > SLOT ? null : this.#answer(msg);
        if (resp && (resp.buffer !== tx.data.buffer || resp.byteOffset !== this.#slot * SLOT)) {
          if (resp.length > SLOT) resp = null;
          else tx.data.set(resp, this.#slot * SLOT);
        }
        if (!resp) {
          // Packed for one postMessage per batch: u16 length, u8 address length, message, address.
          const need = 3 + msg.length + name.length;
          if (fwdLen + need > fwd.length) {
            const bigger = new Uint8Array(Math.max(fwd.length * 2, fwdLen + need));
            bigger.set(fwd.subarray(0, fwdLen));
            fwd = bigger;
          }
          fwd[fwdLen] = msg.length >> 8;
          fwd[fwdLen + 1] = msg.length & 0xff;
          fwd[fwdLen + 2] = name.length;
          fwd.set(msg, fwdLen + 3);
          fwd.set(name, fwdLen + 3 + msg.length);
          fwdLen += need;
          continue;
        }
        const j = this.#slot++;
        this.#txIov.setBigUint64(j * SIZEOF_IOVEC + 8, BigInt(resp.length), true);
        tx.names.set(name, j * NAME);
        tx.hdrView.setUint32(j * SIZEOF_MMSGHDR + 8, namelen, true);
      }
      if (fwdLen) {
        const packed = fwd.slice(0, fwdLen);
        self.postMessage({ type: "queries", packed }, [packed.buffer]);
      }
      let sent = 0;
      while (sent < this.#slot) {
        const r = libc.symbols.sendmmsg(
          this.fd,
          tx.hdr.subarray(sent * SIZEOF_MMSGHDR),
          this.#slot - sent,
          0,
        );
        if (r <= 0) break; // a full socket buffer or an unreachable client: drop, like UDP does
        sent += r;
      }
      const per = (performance.now() - t0) / 1000;
      if (this.#latencies.length < 200_000) {
        for (let i = 0; i < this.#slot; i++) this.#latencies.push(per);
      }
      await this.#flushStats(false);
    }
    await this.#flushStats(true);
    this.#libc.close();
    self.postMessage({ type: "stopped" });
  }

  /** Sends counts and latencies to the main thread now and then, and lets messages in. */
  async #flushStats(force: boolean): Promise<void> {
    const now = performance.now();
    if (!force && now - this.#lastStats < STATS_MS) return;
    this.#lastStats = now;
    if (this.#counts.size || this.#latencies.length) {
      self.postMessage({
        type: "stats",
        counts: [...this.#counts],
        latencies: Float64Array.from(this.#latencies),
      });
      this.#counts.clear();
      this.#latencies = [];
    }
    await tick();
  }
}

function tick(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

let worker: BatchedWorker | undefined;
self.onmessage = (e: MessageEvent) => {
  const m = e.data;
  if (m.type === "start") {
    try {
      worker = new BatchedWorker(m.fd, new Int32Array(m.control), m.snapshot, m.maxUdpPayload);
    } catch (err) {
      self.postMessage({ type: "error", message: (err as Error).message });
      self.postMessage({ type: "stopped" });
      return;
    }
    self.postMessage({ type: "ready" });
    worker.run().catch((err) => {
      self.postMessage({ type: "error", message: (err as Error)?.message ?? String(err) });
      self.postMessage({ type: "stopped" });
    });
  } else if (m.type === "zone") {
    worker?.setSnapshot(m.snapshot);
  }
};
