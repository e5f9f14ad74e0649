/**
 * The on-disk snapshot of the store, so an agent restarted while the metaserver is away
 * serves its last known state at once.
 *
 * File `<stateDir>/cluster-snapshot.json`, mode 0600 (it holds Secrets):
 * `{"format":"edgemesh.cluster-snapshot","version":1,"savedAt":…,"sha256":…,"objects":{…}}`
 * where `sha256` is the hex SHA-256 of `JSON.stringify(objects)`. Written atomically (temp
 * file in the same folder, fsync, rename, fsync of the folder). A file that does not parse,
 * has another format or version, a wrong checksum or malformed objects is moved aside to
 * `cluster-snapshot.json.corrupt-<ms>` and reported; it never throws past `load()`.
 */

import type { Logger } from "../log/mod.ts";
import { SnapshotError } from "./errors.ts";
import type { ClusterStore } from "./store.ts";
import { type Kind, type KindMap, KINDS } from "./types.ts";
import { checkObject } from "./validate.ts";

export const SNAPSHOT_FILE = "cluster-snapshot.json";
export const SNAPSHOT_FORMAT = "edgemesh.cluster-snapshot";
export const SNAPSHOT_VERSION = 1;

export type SnapshotObjects = { [K in Kind]?: KindMap[K][] };

export interface SnapshotFile {
  format: string;
  version: number;
  savedAt: string;
  sha256: string;
  objects: SnapshotObjects;
}

export interface LoadedSnapshot {
  savedAt: string;
  objects: SnapshotObjects;
  count: number;
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Serialises store content into the file format. */
export async function encodeSnapshot(
  objects: SnapshotObjects,
  now: Date = new Date(),
): Promise<string> {
  const body = JSON.stringify(objects);
  // The body is spliced in verbatim so the checksum covers exactly the bytes on disk.
  const head = JSON.stringify({
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    savedAt: now.toISOString(),
    sha256: await sha256(body),
  });
  return `${head.slice(0, -1)},"objects":${body}}\n`;
}

/** Parses and verifies a snapshot; throws SnapshotError naming the problem. */
export async function decodeSnapshot(path: string, text: string): Promise<LoadedSnapshot> {
  let file: SnapshotFile;
  try {
    file = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new SnapshotError(path, `not valid JSON (truncated?): ${err.message}`, { cause: err });
  }
  if (typeof file !== "object" || file === null || file.format !== SNAPSHOT_FORMAT) {
    throw new SnapshotError(
      path,
      `unknown format ${JSON.stringify((file as { format?: unknown })?.format)}`,
    );
  }
  if (file.version !== SNAPSHOT_VERSION) {
    throw new SnapshotError(
      path,
      `unsupported version ${JSON.stringify(file.version)} (want ${SNAPSHOT_VERSION})`,
    );
  }
  if (typeof file.objects !== "object" || file.objects === null) {
    throw new SnapshotError(path, "no objects");
  }
  if ((await sha256(JSON.stringify(file.objects))) !== file.sha256) {
    throw new SnapshotError(path, "checksum mismatch");
  }
  const objects: SnapshotObjects = {};
  let count = 0;
  for (const [kind, list] of Object.entries(file.objects)) {
    if (!(KINDS as readonly string[]).includes(kind)) {
      throw new SnapshotError(path, `unknown kind ${JSON.stringify(kind)}`);
    }
    if (!Array.isArray(list)) throw new SnapshotError(path, `objects.${kind} is not a list`);
    const out: KindMap[Kind][] = [];
    for (const raw of list) {
      const checked = checkObject(kind as Kind, raw);
      if (!checked.ok) {
        const e = checked.error;
        throw new SnapshotError(
          path,
          `malformed ${kind} ${e.namespace ?? ""}/${e.name ?? "?"}: ${e.field} ${e.problem}`,
        );
      }
      out.push(checked.object);
    }
    (objects as Record<string, unknown[]>)[kind] = out;
    count += out.length;
  }
  return { savedAt: String(file.savedAt), objects, count };
}

export interface SnapshotStoreDeps {
  logger: Logger;
  now?: () => number;
}

/** Reads, writes and quarantines the snapshot file in one folder. */
export class SnapshotFiles {
  readonly path: string;
  readonly #log: Logger;
  readonly #now: () => number;

  constructor(readonly stateDir: string, deps: SnapshotStoreDeps) {
    this.path = `${stateDir.replace(/\/+$/, "")}/${SNAPSHOT_FILE}`;
    this.#log = deps.logger;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * Loads the snapshot, or returns undefined when there is none or it is unusable (then it
   * is moved aside and logged). Never throws for file content problems.
   */
  async load(): Promise<LoadedSnapshot | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
    try {
      return await decodeSnapshot(this.path, text);
    } catch (err) {
      if (!(err instanceof SnapshotError)) throw err;
      const aside = `${this.path}.corrupt-${this.#now()}`;
      await Deno.rename(this.path, aside);
      this.#log.error("cluster snapshot is unusable, moved aside; starting without it", {
        path: this.path,
        movedTo: aside,
        problem: err.problem,
      });
      return undefined;
    }
  }

  /** Writes atomically: temp file, fsync, rename, fsync of the folder. */
  async save(objects: SnapshotObjects): Promise<number> {
    const text = await encodeSnapshot(objects, new Date(this.#now()));
    const bytes = new TextEncoder().encode(text);
    await Deno.mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    try {
      using f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
      await f.sync();
    } catch (err) {
      await Deno.remove(tmp).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      throw err;
    }
    await Deno.rename(tmp, this.path);
    using dir = await Deno.open(this.stateDir, { read: true });
    await dir.sync();
    return bytes.length;
  }
}

/** Every object of the store, by kind. */
export function storeObjects(store: ClusterStore): SnapshotObjects {
  const out: Record<string, unknown[]> = {};
  for (const k of KINDS) {
    const list = store.list(k);
    if (list.length) out[k] = [...list];
  }
  return out as SnapshotObjects;
}

/** Puts a loaded snapshot into the store (one batch; kinds absent from it are emptied). */
export function applySnapshot(store: ClusterStore, snap: LoadedSnapshot): void {
  store.batch(() => {
    for (const k of KINDS) store.replace(k, (snap.objects[k] ?? []) as KindMap[typeof k][]);
  });
}
