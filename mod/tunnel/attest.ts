/**
 * KubeEdge certificate identity (`modules.edgeTunnel.identity`): the node certificate, its
 * key and the CA, loaded from PEM files and checked at start; claims signed with the
 * certificate's key (an attestation) and attestations of other nodes verified against the CA.
 *
 * Which name a certificate gives: edgecore asks CloudCore for a certificate with
 * `CN=system:node:<nodeName>, O=system:nodes` (an ECDSA P-256 key), and CloudCore checks that
 * subject when it rotates one. Accepted here: the last subject CN equal to
 * `system:node:<name>` or to `<name>`, or a SAN DNS name equal to `<name>`. Older KubeEdge
 * certificates (`CN=kubeedge.io`) name no node and cannot be used.
 *
 * The certificate must be issued directly by a certificate of `caFile` (a bundle may hold
 * several) and be valid at the time of use, with `CLOCK_SKEW_MS` of slack between clocks.
 */

import { createPrivateKey, type KeyObject, sign, verify, X509Certificate } from "node:crypto";
import { type Attestation, attestationPayload, type Claim, MAX_CERT_BYTES } from "./claim.ts";
import { certNames } from "./cert_names.ts";
import { IdentityError } from "./errors.ts";

/** Mirrors `modules.edgeTunnel.identity` (all three set). */
export interface CertIdentity {
  /** The node certificate (PEM; the first CERTIFICATE block is the node's). */
  certFile: string;
  /** Its private key (PEM, unencrypted: PKCS#8, SEC1 or PKCS#1). */
  keyFile: string;
  /** The CA certificate(s) (PEM) that issue node certificates. */
  caFile: string;
}

/** Slack for clocks that disagree when checking validity periods. */
export const CLOCK_SKEW_MS = 5 * 60_000;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The digest the key type signs with (`null`: Ed25519 signs the message itself). */
function digestFor(key: KeyObject): string | null | undefined {
  switch (key.asymmetricKeyType) {
    case "ed25519":
      return null;
    case "rsa":
      return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048 ? "sha256" : undefined;
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === "prime256v1" ? "sha256" : curve === "secp384r1" ? "sha384" : undefined;
    }
    default:
      return undefined;
  }
}

function keyDescription(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  const extra = d?.namedCurve ?? (d?.modulusLength ? `${d.modulusLength} bits` : "");
  return `${key.asymmetricKeyType ?? key.type}${extra ? ` (${extra})` : ""}`;
}

/** The names a certificate holder may claim as node names. */
export function certNodeNames(der: Uint8Array): string[] {
  const { commonNames, dnsNames } = certNames(der);
  const out = new Set(dnsNames);
  const cn = commonNames.at(-1);
  if (cn !== undefined) out.add(cn.startsWith("system:node:") ? cn.slice(12) : cn);
  return [...out];
}

function validity(cert: X509Certificate, now: number): string | undefined {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  if (!(from <= now + CLOCK_SKEW_MS)) return `not valid before ${cert.validFrom}`;
  if (!(now - CLOCK_SKEW_MS <= to)) return `expired on ${cert.validTo}`;
  return undefined;
}

/**
 * What is wrong with `cert` as the certificate of node `node` at `now` (undefined: nothing):
 * issuer and signature against `cas`, validity of both, and the name.
 */
export function certificateProblem(
  cert: X509Certificate,
  cas: X509Certificate[],
  node: string,
  now: number,
): string | undefined {
  const issuers = cas.filter((ca) => cert.checkIssued(ca));
  if (issuers.length === 0) {
    return `certificate "${oneLine(cert.subject)}" is not issued by the CA (its issuer is "${
      oneLine(cert.issuer)
    }", the CA is ${cas.map((c) => `"${oneLine(c.subject)}"`).join(", ")})`;
  }
  const ca = issuers.find((c) => safeVerify(cert, c));
  if (!ca) return `certificate "${oneLine(cert.subject)}" has a bad CA signature`;
  const bad = validity(cert, now);
  if (bad) return `certificate "${oneLine(cert.subject)}" is ${bad}`;
  const caBad = validity(ca, now);
  if (caBad) return `the CA certificate "${oneLine(ca.subject)}" is ${caBad}`;
  let names: string[];
  try {
    names = certNodeNames(new Uint8Array(cert.raw));
  } catch (err) {
    return `certificate names cannot be read: ${err instanceof Error ? err.message : err}`;
  }
  if (!names.includes(node)) {
    return `certificate names ${
      names.length ? names.map((n) => `"${n}"`).join(", ") : "no node"
    }, not node "${node}" (expected CN "system:node:${node}", CN "${node}" or DNS name "${node}")`;
  }
  return undefined;
}

function safeVerify(cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

function oneLine(dn: string): string {
  return dn.replaceAll("\n", ", ");
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new IdentityError(path, `cannot read the ${what}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function parseCerts(pem: string, path: string, what: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new IdentityError(path, `no PEM CERTIFICATE block in the ${what}`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new IdentityError(path, `${what}: certificate ${i + 1} cannot be parsed`, {
        cause: err,
      });
    }
  });
}

/** Signs claims with the node certificate's key and verifies other nodes' attestations. */
export class Attestor {
  private constructor(
    readonly nodeName: string,
    readonly cert: X509Certificate,
    readonly cas: X509Certificate[],
    readonly certDer: Uint8Array,
    private readonly key: KeyObject,
    private readonly digest: string | null,
    private readonly now: () => number,
  ) {}

  /**
   * Loads and checks the certificate identity of `nodeName`; every problem is an
   * `IdentityError` naming the file.
   */
  static async load(
    files: CertIdentity,
    nodeName: string,
    now: () => number = Date.now,
  ): Promise<Attestor> {
    const [certPem, keyPem, caPem] = await Promise.all([
      readText(files.certFile, "node certificate"),
      readText(files.keyFile, "node key"),
      readText(files.caFile, "CA certificate"),
    ]);
    const cas = parseCerts(caPem, files.caFile, "CA file");
    for (const ca of cas) {
      if (!ca.ca) {
        throw new IdentityError(
          files.caFile,
          `"${oneLine(ca.subject)}" is not a CA certificate (basicConstraints CA:TRUE missing)`,
        );
      }
    }
    const cert = parseCerts(certPem, files.certFile, "node certificate")[0];
    const der = new Uint8Array(cert.raw);
    if (der.length > MAX_CERT_BYTES) {
      throw new IdentityError(
        files.certFile,
        `certificate of ${der.length} bytes is larger than ${MAX_CERT_BYTES}`,
      );
    }
    const problem = certificateProblem(cert, cas, nodeName, now());
    if (problem) throw new IdentityError(files.certFile, problem);
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch (err) {
      throw new IdentityError(
        files.keyFile,
        `not an unencrypted PEM private key: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const digest = digestFor(key);
    if (digest === undefined) {
      throw new IdentityError(
        files.keyFile,
        `unsupported key type ${
          keyDescription(key)
        }; use ECDSA P-256/P-384, RSA ≥ 2048 bits or Ed25519`,
      );
    }
    let matches = false;
    try {
      matches = cert.checkPrivateKey(key);
    } catch {
      // Different key types: no match.
    }
    if (!matches) {
      throw new IdentityError(
        files.keyFile,
        `the key does not match the certificate in ${files.certFile}`,
      );
    }
    return new Attestor(nodeName, cert, cas, der, key, digest, now);
  }

  /** The claim with our attestation added (the claim must be this node's). */
  attest(c: Claim): Claim {
    if (c.node !== this.nodeName) {
      throw new Error(
        `cannot attest a claim for "${c.node}" with the certificate of ${this.nodeName}`,
      );
    }
    const sig = new Uint8Array(sign(this.digest, attestationPayload(c), this.key));
    const att: Attestation = { cert: this.certDer, sig };
    return { ...c, att };
  }

  /**
   * What is wrong with the claim's attestation (undefined: it is valid): present, issued by
   * our CA, valid now, naming the claim's node, and signed over the claim's statement.
   */
  verify(c: Claim): string | undefined {
    if (!c.att) return "the claim carries no certificate attestation";
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(c.att.cert);
    } catch {
      return "the attestation's certificate cannot be parsed";
    }
    const problem = certificateProblem(cert, this.cas, c.node, this.now());
    if (problem) return problem;
    const digest = digestFor(cert.publicKey);
    if (digest === undefined) {
      return `unsupported certificate key type ${keyDescription(cert.publicKey)}`;
    }
    let ok = false;
    try {
      ok = verify(digest, attestationPayload(c), cert.publicKey, c.att.sig);
    } catch {
      // A malformed signature: not ok.
    }
    return ok ? undefined : "the certificate's signature does not match the claim";
  }
}
