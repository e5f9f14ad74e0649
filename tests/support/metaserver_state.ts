/**
 * The object store of the test metaserver: objects by resource, a global monotonic
 * resourceVersion, a bounded event history (older versions answer `410 Gone`), and the open
 * watches that every change fans out to.
 */

import {
  apiVersionOf,
  findResourceByKind,
  type ResourceDef,
  resourceKey,
} from "./metaserver_resources.ts";
import type { Matcher } from "./metaserver_select.ts";

// deno-lint-ignore no-explicit-any
export type Obj = Record<string, any> & {
  // deno-lint-ignore no-explicit-any
  metadata: Record<string, any> & { name: string; namespace?: string; resourceVersion?: string };
};

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

interface HistoryEvent {
  rv: number;
  key: string;
  type: EventType;
  object: Obj;
}

/** One open watch: what it selects and where its events go. */
export interface WatchSink {
  def: ResourceDef;
  /** The API version the client asked for (objects are shown in it). */
  version: string;
  namespace?: string;
  match: Matcher;
  /** Queues one event; returns false when the client is gone. */
  send(event: unknown): boolean;
  /** Ends the stream (idempotent). */
  close(): void;
}

export function keyOf(obj: { metadata: { namespace?: string; name: string } }): string {
  return obj.metadata.namespace
    ? `${obj.metadata.namespace}/${obj.metadata.name}`
    : obj.metadata.name;
}

export class MetaState {
  readonly #objects = new Map<string, Map<string, Obj>>();
  readonly #history: HistoryEvent[] = [];
  readonly #watches = new Set<WatchSink>();
  readonly #historyLimit: number;
  #rv: number;
  /** Events with rv <= this have been dropped from history. */
  #compactedRv: number;

  constructor(historyLimit: number, initialResourceVersion: number) {
    this.#historyLimit = historyLimit;
    this.#rv = this.#compactedRv = initialResourceVersion;
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  get compactedResourceVersion(): number {
    return this.#compactedRv;
  }

  get watchCount(): number {
    return this.#watches.size;
  }

  /** Finds the resource of an object given to the control API; defaults its namespace. */
  defOf(obj: Obj): ResourceDef {
    const def = findResourceByKind(String(obj.apiVersion ?? ""), String(obj.kind ?? ""));
    if (!def) throw new Error(`unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
    if (typeof obj.metadata?.name !== "string") {
      throw new Error(`${def.kind} without metadata.name`);
    }
    if (def.namespaced && !obj.metadata.namespace) {
      obj.metadata = { ...obj.metadata, namespace: "default" };
    }
    return def;
  }

  objects(def: ResourceDef): Map<string, Obj> {
    const key = resourceKey(def);
    let m = this.#objects.get(key);
    if (!m) this.#objects.set(key, m = new Map());
    return m;
  }

  /** Objects of a resource in a namespace (or all) that match, sorted by key. */
  select(def: ResourceDef, namespace: string | undefined, match: Matcher): Obj[] {
    const out: Obj[] = [];
    for (const o of this.objects(def).values()) {
      if (namespace && o.metadata.namespace !== namespace) continue;
      if (match(o)) out.push(o);
    }
    return out.sort((a, b) => keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0);
  }

  /** Stores a change with a new resourceVersion, records it and fans it out to watches. */
  commit(def: ResourceDef, type: EventType, input: Obj): Obj {
    const rv = ++this.#rv;
    const map = this.objects(def);
    const key = keyOf(input);
    const old = map.get(key);
    const obj = structuredClone(input);
    obj.apiVersion = apiVersionOf(def.group, def.versions[0]);
    obj.kind = def.kind;
    if (!def.namespaced) delete obj.metadata.namespace;
    obj.metadata.resourceVersion = String(rv);
    if (type === "DELETED") {
      map.delete(key);
    } else {
      obj.metadata.uid = old?.metadata.uid ?? obj.metadata.uid ?? crypto.randomUUID();
      obj.metadata.creationTimestamp = old?.metadata.creationTimestamp ??
        obj.metadata.creationTimestamp ??
        new Date().toISOString().replace(/\.\d+Z$/, "Z");
      map.set(key, obj);
    }
    const ev: HistoryEvent = { rv, key: resourceKey(def), type, object: obj };
    this.#history.push(ev);
    while (this.#history.length > this.#historyLimit) {
      this.#compactedRv = this.#history.shift()!.rv;
    }
    for (const w of this.#watches) {
      if (resourceKey(w.def) === ev.key) this.#deliver(w, ev);
    }
    return structuredClone(obj);
  }

  /**
   * Opens a watch: from `from` (replaying newer history) or, without it, with synthetic
   * ADDED events for current objects. Returns "gone" when `from` is older than the history.
   */
  openWatch(w: WatchSink, from: number | undefined): "gone" | "open" {
    if (from !== undefined && from < this.#compactedRv) return "gone";
    this.#watches.add(w);
    if (from === undefined) {
      for (const o of this.select(w.def, w.namespace, w.match)) {
        this.#send(w, { type: "ADDED", object: this.view(o, w.def, w.version) });
      }
    } else {
      const key = resourceKey(w.def);
      for (const ev of this.#history) if (ev.rv > from && ev.key === key) this.#deliver(w, ev);
    }
    return "open";
  }

  closeWatch(w: WatchSink): void {
    if (this.#watches.delete(w)) w.close();
  }

  /** Ends every open watch; returns how many. */
  closeWatches(): number {
    const all = [...this.#watches];
    for (const w of all) this.closeWatch(w);
    return all.length;
  }

  /** Drops all history: any older resourceVersion is now expired. */
  compact(): void {
    this.#history.length = 0;
    this.#compactedRv = this.#rv;
  }

  /** The object as seen through an API version. */
  view(obj: Obj, def: ResourceDef, version: string): Obj {
    return { ...obj, apiVersion: apiVersionOf(def.group, version), kind: def.kind };
  }

  #deliver(w: WatchSink, ev: { type: EventType; object: Obj }): void {
    if (w.namespace && ev.object.metadata.namespace !== w.namespace) return;
    if (!w.match(ev.object)) return;
    this.#send(w, { type: ev.type, object: this.view(ev.object, w.def, w.version) });
  }

  #send(w: WatchSink, event: unknown): void {
    if (!w.send(event)) this.closeWatch(w);
  }
}
