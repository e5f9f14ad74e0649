/** The in-memory cluster store: every watched object by kind, with typed change events. */

import { type Kind, type KindMap, KINDS, objectKey } from "./types.ts";

export type ChangeType = "added" | "modified" | "deleted";

export interface StoreChange<K extends Kind = Kind> {
  kind: K;
  type: ChangeType;
  object: KindMap[K];
  /** The previous version for "modified" and "deleted". */
  old?: KindMap[K];
}

/** Typed event map: `"services:update"` carries a `StoreChange<"services">`, and so on. */
export type StoreEvents = { [K in Kind as `${K}:update`]: StoreChange<K> } & {
  /** Fired once after a batch of changes (a list, a watch event, a snapshot load). */
  "batch": { kinds: ReadonlySet<Kind> };
};

type Listener<T> = (payload: T) => void;

/** Read-only view handed to consumers (DNS, proxy, health, gateway). */
export interface StoreReader {
  list<K extends Kind>(kind: K): readonly KindMap[K][];
  get<K extends Kind>(kind: K, namespace: string | undefined, name: string): KindMap[K] | undefined;
  on<E extends keyof StoreEvents>(event: E, listener: Listener<StoreEvents[E]>): () => void;
  /** Increases on every change; cheap staleness check for derived views. */
  readonly version: number;
}

export class ClusterStore implements StoreReader {
  #objects = new Map<Kind, Map<string, KindMap[Kind]>>();
  #listeners = new Map<string, Set<Listener<unknown>>>();
  #version = 0;
  #batchDepth = 0;
  #batchKinds = new Set<Kind>();

  constructor() {
    for (const k of KINDS) this.#objects.set(k, new Map());
  }

  get version(): number {
    return this.#version;
  }

  list<K extends Kind>(kind: K): readonly KindMap[K][] {
    return [...this.#objects.get(kind)!.values()] as KindMap[K][];
  }

  get<K extends Kind>(
    kind: K,
    namespace: string | undefined,
    name: string,
  ): KindMap[K] | undefined {
    const key = namespace ? `${namespace}/${name}` : name;
    return this.#objects.get(kind)!.get(key) as KindMap[K] | undefined;
  }

  size(kind: Kind): number {
    return this.#objects.get(kind)!.size;
  }

  on<E extends keyof StoreEvents>(event: E, listener: Listener<StoreEvents[E]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, set = new Set());
    set.add(listener as Listener<unknown>);
    return () => set!.delete(listener as Listener<unknown>);
  }

  #emit<E extends keyof StoreEvents>(event: E, payload: StoreEvents[E]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        l(payload);
      } catch (err) {
        // A broken listener must not stop the others nor the source feeding the store.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** Groups changes so listeners of "batch" run once. */
  batch<T>(fn: () => T): T {
    this.#batchDepth++;
    try {
      return fn();
    } finally {
      if (--this.#batchDepth === 0 && this.#batchKinds.size > 0) {
        const kinds = this.#batchKinds;
        this.#batchKinds = new Set();
        this.#emit("batch", { kinds });
      }
    }
  }

  /** Adds or replaces one object. Returns the change, or undefined when nothing changed. */
  upsert<K extends Kind>(kind: K, object: KindMap[K]): StoreChange<K> | undefined {
    return this.batch(() => {
      const map = this.#objects.get(kind)!;
      const key = objectKey(object);
      const old = map.get(key) as KindMap[K] | undefined;
      if (old && sameVersion(old, object)) return undefined;
      map.set(key, object);
      return this.#changed({ kind, type: old ? "modified" : "added", object, old });
    });
  }

  delete<K extends Kind>(
    kind: K,
    namespace: string | undefined,
    name: string,
  ): StoreChange<K> | undefined {
    return this.batch(() => {
      const map = this.#objects.get(kind)!;
      const key = namespace ? `${namespace}/${name}` : name;
      const old = map.get(key) as KindMap[K] | undefined;
      if (!old) return undefined;
      map.delete(key);
      return this.#changed({ kind, type: "deleted", object: old, old });
    });
  }

  /**
   * Replaces the whole content of a kind (after a list): emits added/modified/deleted for the
   * difference only, so a re-list after a dropped watch neither loses nor repeats events.
   */
  replace<K extends Kind>(kind: K, objects: readonly KindMap[K][]): number {
    return this.batch(() => {
      const map = this.#objects.get(kind)!;
      const seen = new Set<string>();
      let changes = 0;
      for (const o of objects) {
        seen.add(objectKey(o));
        if (this.upsert(kind, o)) changes++;
      }
      for (const [key, old] of [...map]) {
        if (seen.has(key)) continue;
        map.delete(key);
        this.#changed({ kind, type: "deleted", object: old as KindMap[K], old: old as KindMap[K] });
        changes++;
      }
      return changes;
    });
  }

  #changed<K extends Kind>(change: StoreChange<K>): StoreChange<K> {
    this.#version++;
    this.#batchKinds.add(change.kind);
    this.#emit(`${change.kind}:update` as keyof StoreEvents, change as never);
    return change;
  }
}

function sameVersion(a: { metadata: { resourceVersion?: string } }, b: typeof a): boolean {
  const ra = a.metadata.resourceVersion;
  const rb = b.metadata.resourceVersion;
  if (ra !== undefined && rb !== undefined) return ra === rb;
  return JSON.stringify(a) === JSON.stringify(b);
}
