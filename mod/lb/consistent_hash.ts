/**
 * Consistent hashing with bounded load. Keys map to one of `partitionCount` partitions; each
 * member owns `replicationFactor` points on a ring, and partitions are assigned to members
 * walking the ring with at most ceil(partitionCount / members × load) partitions per member
 * (EdgeMesh's ring, defaults 100/10/1.25). At pick time a member whose in-flight count would
 * exceed ceil(load × (in-flight + 1) / members) is passed over for the next one on the ring,
 * so one hot key cannot overload one endpoint.
 */

import {
  type Balancer,
  type BalancerEnv,
  type LbEndpoint,
  LoadTracker,
  type Picked,
  type PickRequest,
} from "./balancer.ts";
import { hash32 } from "./hash.ts";

export interface RingOptions {
  /** Default 100. */
  partitionCount: number;
  /** Points per member on the ring. Default 10. */
  replicationFactor: number;
  /** Bounded-load factor (> 1). Default 1.25. */
  load: number;
}

export const DEFAULT_RING_OPTIONS: Readonly<RingOptions> = Object.freeze({
  partitionCount: 100,
  replicationFactor: 10,
  load: 1.25,
});

/** Where the hash key comes from. */
export type HashKey =
  | { kind: "header"; name: string }
  | { kind: "cookie"; name: string; path: string; ttlMs: number }
  | { kind: "sourceIp" }
  | { kind: "query"; name: string };

export function describeHashKey(k: HashKey): string {
  switch (k.kind) {
    case "header":
      return `header:${k.name}`;
    case "cookie":
      return `cookie:${k.name}`;
    case "sourceIp":
      return "sourceIp";
    case "query":
      return `query:${k.name}`;
  }
}

export class ConsistentHashBalancer<E extends LbEndpoint> implements Balancer<E> {
  readonly description: string;
  readonly needs;
  readonly perRequest: boolean;
  #members: E[] = [];
  /** Ring points sorted by hash: member indices and hashes. */
  #ringHash = new Uint32Array(0);
  #ringMember = new Int32Array(0);
  /** Ring index each partition starts its walk at. */
  #partitionStart = new Int32Array(0);
  #load = new LoadTracker();

  constructor(
    readonly key: HashKey,
    private readonly ring: RingOptions,
    private readonly env: BalancerEnv,
  ) {
    this.description = `CONSISTENT_HASH(${describeHashKey(key)})`;
    this.needs = key.kind === "sourceIp" ? "none" as const : "http" as const;
    this.perRequest = key.kind !== "sourceIp";
  }

  active(id: string): number {
    return this.#load.active(id);
  }

  update(endpoints: readonly E[]): void {
    const members = [...new Map(endpoints.map((e) => [e.id, e])).values()];
    this.#members = members;
    const rf = Math.max(1, Math.floor(this.ring.replicationFactor));
    const points: [number, number][] = [];
    members.forEach((m, i) => {
      for (let r = 0; r < rf; r++) points.push([hash32(`${m.id}#${r}`), i]);
    });
    points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.#ringHash = Uint32Array.from(points, (p) => p[0]);
    this.#ringMember = Int32Array.from(points, (p) => p[1]);
    const pc = Math.max(1, Math.floor(this.ring.partitionCount));
    this.#partitionStart = new Int32Array(pc);
    if (members.length === 0) return;
    const cap = Math.ceil((pc / members.length) * this.ring.load);
    const owned = new Int32Array(members.length);
    for (let p = 0; p < pc; p++) {
      let idx = this.#search(hash32(`partition-${p}`));
      for (let step = 0; step < points.length; step++) {
        const j = (idx + step) % points.length;
        if (owned[this.#ringMember[j]] < cap) {
          idx = j;
          break;
        }
      }
      owned[this.#ringMember[idx]]++;
      this.#partitionStart[p] = idx;
    }
  }

  /** First ring index whose hash is ≥ h (wrapping). */
  #search(h: number): number {
    const a = this.#ringHash;
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === a.length ? 0 : lo;
  }

  /** The member a key maps to when nothing is loaded or excluded (for tests and status). */
  owner(key: string): E | undefined {
    if (this.#members.length === 0) return undefined;
    const p = hash32(key) % this.#partitionStart.length;
    return this.#members[this.#ringMember[this.#partitionStart[p]]];
  }

  pick(request: PickRequest, accept?: (e: E) => boolean): Picked<E> | undefined {
    if (this.#members.length === 0) return undefined;
    let key = this.#extract(request);
    let setCookie: string | undefined;
    if (key === undefined) {
      key = randomToken(this.env.random);
      if (this.key.kind === "cookie") setCookie = cookieHeader(this.key, key);
    }
    let accepted = 0;
    let inFlight = 0;
    for (const m of this.#members) {
      if (accept && !accept(m)) continue;
      accepted++;
      inFlight += this.#load.active(m.id);
    }
    if (accepted === 0) return undefined;
    const bound = Math.ceil((this.ring.load * (inFlight + 1)) / accepted);
    const p = hash32(key) % this.#partitionStart.length;
    const start = this.#partitionStart[p];
    const n = this.#ringHash.length;
    const seen = new Set<number>();
    let fallback: E | undefined;
    for (let step = 0; step < n && seen.size < this.#members.length; step++) {
      const mi = this.#ringMember[(start + step) % n];
      if (seen.has(mi)) continue;
      seen.add(mi);
      const m = this.#members[mi];
      if (accept && !accept(m)) continue;
      fallback ??= m;
      if (this.#load.active(m.id) + 1 <= bound) return this.#load.acquire(m, setCookie);
    }
    return fallback ? this.#load.acquire(fallback, setCookie) : undefined;
  }

  #extract(r: PickRequest): string | undefined {
    const k = this.key;
    let v: string | undefined;
    switch (k.kind) {
      case "header":
        v = r.header?.(k.name);
        break;
      case "cookie":
        v = r.cookie?.(k.name);
        break;
      case "sourceIp":
        v = r.clientIp;
        break;
      case "query":
        v = r.query?.(k.name);
        break;
    }
    return v === undefined || v === "" ? undefined : v;
  }
}

function randomToken(random: () => number): string {
  let s = "";
  for (let i = 0; i < 4; i++) s += Math.floor(random() * 0x10000).toString(16).padStart(4, "0");
  return s;
}

function cookieHeader(k: Extract<HashKey, { kind: "cookie" }>, value: string): string {
  let c = `${k.name}=${value}; Path=${k.path}`;
  if (k.ttlMs > 0) c += `; Max-Age=${Math.ceil(k.ttlMs / 1000)}`;
  return c;
}
