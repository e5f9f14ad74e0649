/**
 * Node → public key bindings pinned on first use, persisted in
 * `<stateDir>/health-peer-keys.json` (`{"version": 1, "keys": {node: base64}}`).
 */

import { HealthStateError } from "./errors.ts";
import { fromBase64, toBase64 } from "./identity.ts";

const FILE = "health-peer-keys.json";

export class KeyPins {
  #keys = new Map<string, Uint8Array>();
  #saving: Promise<void> = Promise.resolve();
  #dirty = false;
  #error: unknown;

  /** `stateDir` "" keeps pins in memory only. */
  constructor(readonly stateDir: string) {}

  get path(): string | undefined {
    return this.stateDir ? `${this.stateDir}/${FILE}` : undefined;
  }

  async load(): Promise<void> {
    const path = this.path;
    if (!path) return;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw new HealthStateError(path, "cannot read", { cause: err });
    }
    let doc: { version?: number; keys?: Record<string, string> };
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new HealthStateError(path, "not JSON", { cause: err });
    }
    if (doc.version !== 1 || typeof doc.keys !== "object" || doc.keys === null) {
      throw new HealthStateError(path, `unsupported version ${JSON.stringify(doc.version)}`);
    }
    for (const [node, b64] of Object.entries(doc.keys)) {
      const key = fromBase64(String(b64));
      if (key.length !== 32) throw new HealthStateError(path, `key of "${node}" is not 32 bytes`);
      this.#keys.set(node, key);
    }
  }

  get(node: string): Uint8Array | undefined {
    return this.#keys.get(node);
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Pins a key for a node that has none; persists in the background (see `flush`). */
  pin(node: string, key: Uint8Array): void {
    if (this.#keys.has(node)) return;
    this.#keys.set(node, key.slice());
    this.#dirty = true;
    if (this.path) {
      this.#saving = this.#saving.then(() => this.#save()).then(
        () => (this.#error = undefined),
        (err) => (this.#error = err),
      );
    }
  }

  /** Resolves once every pin so far is on disk; rejects with the last write error. */
  async flush(): Promise<void> {
    await this.#saving;
    if (this.#error) throw this.#error;
  }

  async #save(): Promise<void> {
    const path = this.path;
    if (!path || !this.#dirty) return;
    this.#dirty = false;
    const keys: Record<string, string> = {};
    for (const [n, k] of [...this.#keys].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
      keys[n] = toBase64(k);
    }
    const tmp = `${path}.tmp`;
    try {
      await Deno.mkdir(this.stateDir, { recursive: true });
      await Deno.writeTextFile(tmp, JSON.stringify({ version: 1, keys }, null, 1) + "\n", {
        mode: 0o600,
      });
      await Deno.rename(tmp, path);
    } catch (err) {
      this.#dirty = true;
      throw new HealthStateError(path, "cannot write", { cause: err });
    }
  }
}
