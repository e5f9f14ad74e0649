/**
 * Signing identity for health messages (Ed25519). The lead wires the tunnel's identity key;
 * without a tunnel a key is generated with WebCrypto and kept in stateDir.
 */

import { HealthStateError } from "./errors.ts";

export interface HealthIdentity {
  sign(bytes: Uint8Array): Promise<Uint8Array>;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

/** Looks up a node's public key from an authority (the tunnel's signed claims). */
export type PeerKeyLookup = (node: string) => Uint8Array | undefined;

const ED25519 = { name: "Ed25519" } as const;

async function fromPair(pair: CryptoKeyPair): Promise<HealthIdentity> {
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return {
    publicKey,
    sign: async (bytes) =>
      new Uint8Array(await crypto.subtle.sign(ED25519, pair.privateKey, bytes as BufferSource)),
  };
}

/** A fresh in-memory identity (tests, benchmarks). */
export async function generateIdentity(): Promise<HealthIdentity> {
  return fromPair(
    await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair,
  );
}

const IDENTITY_FILE = "health-identity.pkcs8";

/**
 * Loads `<stateDir>/health-identity.pkcs8` or creates it (mode 0600). Used when the tunnel
 * identity is not available.
 */
export async function loadOrCreateIdentity(stateDir: string): Promise<HealthIdentity> {
  const path = `${stateDir}/${IDENTITY_FILE}`;
  let pkcs8: Uint8Array | undefined;
  try {
    pkcs8 = await Deno.readFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new HealthStateError(path, "cannot read", { cause: err });
    }
  }
  if (pkcs8) {
    let privateKey: CryptoKey;
    try {
      privateKey = await crypto.subtle.importKey("pkcs8", pkcs8 as BufferSource, ED25519, true, [
        "sign",
      ]);
    } catch (err) {
      throw new HealthStateError(path, "not an Ed25519 PKCS#8 key", { cause: err });
    }
    // WebCrypto cannot derive the public key from a private one; the JWK export carries it.
    const jwk = await crypto.subtle.exportKey("jwk", privateKey);
    const publicKey = await crypto.subtle.importKey(
      "jwk",
      { kty: "OKP", crv: "Ed25519", x: jwk.x },
      ED25519,
      true,
      [
        "verify",
      ],
    );
    return fromPair({ privateKey, publicKey });
  }
  const pair = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair;
  const bytes = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  await Deno.mkdir(stateDir, { recursive: true });
  const tmp = `${path}.tmp`;
  await Deno.writeFile(tmp, bytes, { mode: 0o600 });
  await Deno.rename(tmp, path);
  return fromPair(pair);
}

/** Verifies Ed25519 signatures, caching imported public keys (per instance, bounded). */
export class SignatureVerifier {
  #keys = new Map<string, Promise<CryptoKey>>();

  async verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const id = toBase64(publicKey);
    let key = this.#keys.get(id);
    if (!key) {
      if (this.#keys.size >= 4096) this.#keys.clear();
      key = crypto.subtle.importKey("raw", publicKey as BufferSource, ED25519, false, ["verify"]);
      this.#keys.set(id, key);
    }
    let k: CryptoKey;
    try {
      k = await key;
    } catch {
      // Not a valid Ed25519 point: the message cannot be authentic.
      this.#keys.delete(id);
      return false;
    }
    return crypto.subtle.verify(ED25519, k, signature as BufferSource, data as BufferSource);
  }
}

export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

export function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
