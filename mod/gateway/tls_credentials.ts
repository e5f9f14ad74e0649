/**
 * TLS credentials from `kubernetes.io/tls` Secrets: secure contexts for termination (cached
 * per Secret version, so a changed Secret takes effect on the next handshake) and client
 * certificate verification for MUTUAL mode.
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { Secret, StoreReader } from "../kube/mod.ts";
import { CredentialError } from "./errors.ts";
import type { TlsSettings } from "./model.ts";

export interface Credential {
  context: tls.SecureContext;
  /** Trusted client CAs (MUTUAL only). */
  cas: X509Certificate[];
}

/** A Secret field as text (stringData wins over base64 data); throws CredentialError on bad base64. */
function field(secret: Secret, id: string, name: string): string | undefined {
  const s = secret.stringData?.[name];
  if (s !== undefined) return s;
  const b = secret.data?.[name]?.replace(/\s+/g, "");
  if (b === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b) || b.length % 4 === 1) {
    throw new CredentialError(id, `${name} is not base64`);
  }
  return new TextDecoder().decode(Uint8Array.from(atob(b), (c) => c.charCodeAt(0)));
}

/** Every certificate in a PEM bundle. */
export function parsePemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

export class CredentialStore {
  #cache = new Map<string, { sig: string; value: Credential | CredentialError }>();

  constructor(private readonly store: StoreReader) {}

  /** The credential for a server, or the error that makes it unusable. */
  get(settings: TlsSettings): Credential | CredentialError {
    const [ns, name] = settings.credential.split("/", 2);
    const secret = this.store.get("secrets", ns, name);
    const caSecret = settings.mode === "MUTUAL"
      ? this.store.get("secrets", ns, `${name}-cacert`)
      : undefined;
    const key = `${settings.credential}|${settings.mode}|${settings.minProtocolVersion ?? ""}`;
    const sig = `${secret?.metadata.resourceVersion ?? ""}|${
      secret ? JSON.stringify([secret.data, secret.stringData]) : "-"
    }|${caSecret ? JSON.stringify(caSecret.data) : "-"}`;
    const have = this.#cache.get(key);
    if (have && have.sig === sig) return have.value;
    const value = this.#build(settings, secret, caSecret);
    this.#cache.set(key, { sig, value });
    return value;
  }

  /** Drops cached entries no server uses any more. */
  retain(keys: Iterable<TlsSettings>): void {
    const keep = new Set(
      [...keys].map((s) => `${s.credential}|${s.mode}|${s.minProtocolVersion ?? ""}`),
    );
    for (const k of [...this.#cache.keys()]) if (!keep.has(k)) this.#cache.delete(k);
  }

  #build(
    settings: TlsSettings,
    secret: Secret | undefined,
    caSecret: Secret | undefined,
  ): Credential | CredentialError {
    const id = settings.credential;
    if (!secret) return new CredentialError(id, "not found");
    let cas: X509Certificate[] = [];
    try {
      const cert = field(secret, id, "tls.crt");
      const key = field(secret, id, "tls.key");
      if (!cert || !key) return new CredentialError(id, "needs tls.crt and tls.key");
      const chain = parsePemCertificates(cert);
      if (chain.length === 0) return new CredentialError(id, "tls.crt holds no PEM certificate");
      // createSecureContext accepts some broken keys here; check the pair explicitly.
      if (!chain[0].checkPrivateKey(createPrivateKey(key))) {
        return new CredentialError(id, "tls.key does not belong to the certificate in tls.crt");
      }
      if (settings.mode === "MUTUAL") {
        const ca = field(secret, id, "ca.crt") ??
          (caSecret && (field(caSecret, id, "ca.crt") ?? field(caSecret, id, "cacert")));
        if (!ca) {
          return new CredentialError(
            id,
            "MUTUAL mode needs ca.crt (in the Secret or in a <name>-cacert Secret)",
          );
        }
        cas = parsePemCertificates(ca);
        if (cas.length === 0) return new CredentialError(id, "ca.crt holds no PEM certificate");
      }
      const context = tls.createSecureContext({
        cert,
        key,
        minVersion: settings.minProtocolVersion,
      });
      return { context, cas };
    } catch (err) {
      if (err instanceof CredentialError) return err;
      return new CredentialError(
        id,
        `does not parse: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }
}

/**
 * Verifies a client chain (leaf first, then what the client sent) against trusted CAs:
 * each link issued and signed by the next, all within validity, ending at a trusted CA.
 * Returns undefined when valid, else the reason.
 */
export function verifyClientChain(
  chain: X509Certificate[],
  cas: X509Certificate[],
  now = new Date(),
): string | undefined {
  if (chain.length === 0) return "no client certificate";
  const trusted = new Set(cas.map((c) => c.fingerprint256));
  const valid = (c: X509Certificate) => new Date(c.validFrom) <= now && now <= new Date(c.validTo);
  let cert = chain[0];
  const pool = [...chain.slice(1), ...cas];
  for (let depth = 0; depth < 8; depth++) {
    if (!valid(cert)) return `certificate "${cert.subject}" is not valid now`;
    if (trusted.has(cert.fingerprint256)) return undefined;
    const issuer = pool.find((c) =>
      c.fingerprint256 !== cert.fingerprint256 && cert.checkIssued(c) && cert.verify(c.publicKey)
    );
    if (!issuer) return `no trusted issuer for "${cert.subject}"`;
    if (trusted.has(issuer.fingerprint256)) {
      return valid(issuer) ? undefined : `CA "${issuer.subject}" is not valid now`;
    }
    cert = issuer;
  }
  return "certificate chain too long";
}

/** The peer chain of a node:tls socket, leaf first. */
export function peerChain(sock: tls.TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let c = sock.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256) && out.length < 10) {
    seen.add(c.fingerprint256);
    out.push(new X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}
