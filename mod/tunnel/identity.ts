/**
 * The node's Ed25519 identity (created on first start, kept in `stateDir` with mode 0600)
 * and the pinned node-name ↔ peer-ID bindings (trust on first use).
 */

import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { PrivateKey } from "@libp2p/interface";
import { IdentityError } from "./errors.ts";

/** File format version of the key file (first byte) and of the pin file (`version`). */
const KEY_FILE_VERSION = 1;
const PIN_FILE_VERSION = 1;
export const KEY_FILE = "tunnel-identity.key";
export const PIN_FILE = "tunnel-pins.json";

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeFile(tmp, data, { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}

/** Loads the identity key from `stateDir`, creating it (mode 0600) on first use. */
export async function loadOrCreateIdentity(stateDir: string): Promise<PrivateKey> {
  const path = join(stateDir, KEY_FILE);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new IdentityError(path, "cannot read the key file", { cause: err });
    }
  }
  if (bytes) {
    if (bytes[0] !== KEY_FILE_VERSION) {
      throw new IdentityError(
        path,
        `unsupported key file version ${bytes[0]} (expected ${KEY_FILE_VERSION})`,
      );
    }
    try {
      const key = privateKeyFromProtobuf(bytes.subarray(1));
      if (key.type !== "Ed25519") throw new Error(`key type ${key.type}`);
      const info = await Deno.stat(path);
      if (info.mode !== null && (info.mode & 0o077) !== 0) await Deno.chmod(path, 0o600);
      return key;
    } catch (err) {
      throw new IdentityError(
        path,
        "the key file is corrupt; move it away to create a new identity",
        { cause: err },
      );
    }
  }
  try {
    await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
    const key = await generateKeyPair("Ed25519");
    const pb = privateKeyToProtobuf(key);
    const out = new Uint8Array(pb.length + 1);
    out[0] = KEY_FILE_VERSION;
    out.set(pb, 1);
    await writeAtomic(path, out);
    return key;
  } catch (err) {
    throw new IdentityError(path, "cannot create the key file", { cause: err });
  }
}

/** Node name → peer ID bindings pinned on first use, persisted as JSON in `stateDir`. */
export class PinStore {
  #pins = new Map<string, string>();
  #writing: Promise<void> = Promise.resolve();
  readonly path: string;

  private constructor(stateDir: string, private readonly onWriteError: (err: unknown) => void) {
    this.path = join(stateDir, PIN_FILE);
  }

  /** `onWriteError` hears about failed writes; the in-memory pins stay authoritative. */
  static async open(
    stateDir: string,
    onWriteError: (err: unknown) => void = () => {},
  ): Promise<PinStore> {
    const store = new PinStore(stateDir, onWriteError);
    let text: string | undefined;
    try {
      text = await Deno.readTextFile(store.path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        throw new IdentityError(store.path, "cannot read pinned bindings", { cause: err });
      }
    }
    if (text !== undefined) {
      let doc: { version?: unknown; pins?: unknown };
      try {
        doc = JSON.parse(text);
      } catch (err) {
        throw new IdentityError(store.path, "pinned bindings are not valid JSON", { cause: err });
      }
      if (doc.version !== PIN_FILE_VERSION || typeof doc.pins !== "object" || doc.pins === null) {
        throw new IdentityError(
          store.path,
          `unsupported pin file (version ${String(doc.version)})`,
        );
      }
      for (const [node, peer] of Object.entries(doc.pins as Record<string, unknown>)) {
        if (typeof peer === "string") store.#pins.set(node, peer);
      }
    }
    return store;
  }

  get(node: string): string | undefined {
    return this.#pins.get(node);
  }

  nodeOf(peerId: string): string | undefined {
    for (const [n, p] of this.#pins) if (p === peerId) return n;
    return undefined;
  }

  /** Pins `node` to `peerId`; returns false when `node` is pinned to another peer. */
  pin(node: string, peerId: string): boolean {
    const cur = this.#pins.get(node);
    if (cur !== undefined) return cur === peerId;
    this.#pins.set(node, peerId);
    this.#save();
    return true;
  }

  /**
   * Pins `node` to `peerId` even when it was pinned to another peer (a node with a new key
   * proved by its certificate); returns the peer it replaces.
   */
  repin(node: string, peerId: string): string | undefined {
    const cur = this.#pins.get(node);
    if (cur === peerId) return undefined;
    this.#pins.set(node, peerId);
    this.#save();
    return cur;
  }

  /** Resolves once pending writes are on disk. */
  flush(): Promise<void> {
    return this.#writing;
  }

  #save(): void {
    const doc = { version: PIN_FILE_VERSION, pins: Object.fromEntries(this.#pins) };
    const data = new TextEncoder().encode(JSON.stringify(doc, null, 2) + "\n");
    this.#writing = this.#writing.then(() => writeAtomic(this.path, data)).catch(this.onWriteError);
  }
}
