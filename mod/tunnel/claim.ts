/**
 * Signed claims: "node N is peer P", signed by P's own Ed25519 key. Claims are exchanged on
 * every new connection (the sender's own claim first, then the verified claims it knows), so
 * a node learns the peer ID of nodes it has never met through relays or other peers; a
 * forwarded claim cannot be forged because the peer ID embeds the signing key.
 *
 * With a KubeEdge node certificate (attest.ts) a claim also carries an attestation: the
 * certificate (DER) and a signature by its key over the same statement under another context,
 * so forwarded claims stay verifiable against the CA. Wire version 1 is a claim without it,
 * version 2 one with it; the signed statement itself (its leading byte is 1) is the same.
 */

import type { PrivateKey } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { ClaimError } from "./errors.ts";

export const CLAIM_PROTOCOL = "/edgemesh/claim/1.0.0";
const CLAIM_VERSION = 1;
const ATTESTED_CLAIM_VERSION = 2;
const SIGN_CONTEXT = new TextEncoder().encode("edgemesh/claim/1\0");
const ATTEST_CONTEXT = new TextEncoder().encode("edgemesh/claim-cert/1\0");
export const MAX_CLAIMS_PER_MESSAGE = 1024;
/** Largest certificate (DER) an attestation may carry. */
export const MAX_CERT_BYTES = 8 * 1024;
/** Largest attestation signature (an RSA-8192 signature is 1024 bytes). */
export const MAX_ATTEST_SIG_BYTES = 1024;
/**
 * Bound of one claim message (≈ 1024 attested claims with 3 KiB certificates); the encoder
 * leaves out the claims that would not fit.
 */
export const MAX_CLAIM_MESSAGE_BYTES = 4 * 1024 * 1024;

/** A node certificate vouching for a claim. */
export interface Attestation {
  /** The certificate, DER. */
  cert: Uint8Array;
  /** Signature by the certificate's key over `attestationPayload(claim)`. */
  sig: Uint8Array;
}

export interface Claim {
  node: string;
  peerId: string;
  /** Milliseconds since the epoch when the claim was signed. */
  ts: number;
  sig: Uint8Array;
  /** Present on claims of agents with a KubeEdge certificate identity. */
  att?: Attestation;
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

function unsignedBytes(node: string, peerId: string, ts: number): Uint8Array {
  const name = enc.encode(node);
  const pid = enc.encode(peerIdFromString(peerId).toString());
  if (name.length === 0 || name.length > 253) {
    throw new ClaimError("malformed", `bad node name "${node}"`);
  }
  const out = new Uint8Array(1 + 1 + name.length + 1 + pid.length + 8);
  const dv = new DataView(out.buffer);
  let o = 0;
  out[o++] = CLAIM_VERSION;
  out[o++] = name.length;
  out.set(name, o);
  o += name.length;
  out[o++] = pid.length;
  out.set(pid, o);
  o += pid.length;
  dv.setFloat64(o, ts);
  return out;
}

function signedPayload(unsigned: Uint8Array, context = SIGN_CONTEXT): Uint8Array {
  const p = new Uint8Array(context.length + unsigned.length);
  p.set(context);
  p.set(unsigned, context.length);
  return p;
}

/** The bytes a certificate key signs for a claim: the claim's statement, another context. */
export function attestationPayload(c: { node: string; peerId: string; ts: number }): Uint8Array {
  return signedPayload(unsignedBytes(c.node, c.peerId, c.ts), ATTEST_CONTEXT);
}

export async function signClaim(
  key: PrivateKey,
  node: string,
  peerId: string,
  ts: number,
): Promise<Claim> {
  const sig = Uint8Array.from(await key.sign(signedPayload(unsignedBytes(node, peerId, ts))));
  return { node, peerId, ts, sig };
}

/** True when the claim's signature was made by the key inside its peer ID. */
export async function verifyClaim(c: Claim): Promise<boolean> {
  const pub = peerIdFromString(c.peerId).publicKey;
  if (!pub || pub.type !== "Ed25519") return false;
  return await pub.verify(signedPayload(unsignedBytes(c.node, c.peerId, c.ts)), c.sig);
}

export function encodeClaim(c: Claim): Uint8Array {
  const u = unsignedBytes(c.node, c.peerId, c.ts);
  const att = c.att;
  if (att && (att.cert.length > MAX_CERT_BYTES || att.sig.length > MAX_ATTEST_SIG_BYTES)) {
    throw new ClaimError("malformed", "attestation too large");
  }
  const extra = att ? 4 + att.cert.length + att.sig.length : 0;
  const out = new Uint8Array(u.length + 1 + c.sig.length + extra);
  out.set(u);
  out[u.length] = c.sig.length;
  out.set(c.sig, u.length + 1);
  if (att) {
    out[0] = ATTESTED_CLAIM_VERSION;
    const dv = new DataView(out.buffer);
    let o = u.length + 1 + c.sig.length;
    dv.setUint16(o, att.cert.length);
    out.set(att.cert, o + 2);
    o += 2 + att.cert.length;
    dv.setUint16(o, att.sig.length);
    out.set(att.sig, o + 2);
  }
  return out;
}

export function decodeClaim(b: Uint8Array): Claim {
  try {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let o = 0;
    const version = b[o++];
    if (version !== CLAIM_VERSION && version !== ATTESTED_CLAIM_VERSION) {
      throw new Error(`version ${version}`);
    }
    const nl = b[o++];
    const node = dec.decode(b.subarray(o, o + nl));
    o += nl;
    const pl = b[o++];
    const pid = dec.decode(b.subarray(o, o + pl));
    o += pl;
    const ts = dv.getFloat64(o);
    o += 8;
    const sl = b[o++];
    const sig = b.slice(o, o + sl);
    o += sl;
    let att: Attestation | undefined;
    if (version === ATTESTED_CLAIM_VERSION) {
      const cl = dv.getUint16(o);
      if (cl === 0 || cl > MAX_CERT_BYTES) throw new Error(`certificate of ${cl} bytes`);
      const cert = b.slice(o + 2, o + 2 + cl);
      o += 2 + cl;
      const al = dv.getUint16(o);
      if (al === 0 || al > MAX_ATTEST_SIG_BYTES) throw new Error(`attestation of ${al} bytes`);
      const asig = b.slice(o + 2, o + 2 + al);
      o += 2 + al;
      if (cert.length !== cl || asig.length !== al) throw new Error("bad lengths");
      att = { cert, sig: asig };
    }
    if (o !== b.length || nl === 0 || sig.length !== sl) throw new Error("bad lengths");
    const peerId = peerIdFromString(pid).toString();
    return att ? { node, peerId, ts, sig, att } : { node, peerId, ts, sig };
  } catch (err) {
    throw new ClaimError(
      "malformed",
      `malformed claim: ${err instanceof Error ? err.message : err}`,
    );
  }
}

/**
 * A claim message: version, count, then length-prefixed claims (sender's own first). Claims
 * past `MAX_CLAIMS_PER_MESSAGE` or `MAX_CLAIM_MESSAGE_BYTES` are left out.
 */
export function encodeClaimMessage(claims: Claim[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 3;
  for (const c of claims.slice(0, MAX_CLAIMS_PER_MESSAGE)) {
    const p = encodeClaim(c);
    if (size + 2 + p.length > MAX_CLAIM_MESSAGE_BYTES) continue;
    parts.push(p);
    size += 2 + p.length;
  }
  const out = new Uint8Array(4 + size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, size);
  out[4] = CLAIM_VERSION;
  dv.setUint16(5, parts.length);
  let o = 7;
  for (const p of parts) {
    dv.setUint16(o, p.length);
    out.set(p, o + 2);
    o += 2 + p.length;
  }
  return out;
}

/** Decodes the body (after the u32 length) of a claim message. */
export function decodeClaimMessage(body: Uint8Array): Claim[] {
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (body.length < 3 || body[0] !== CLAIM_VERSION) {
    throw new ClaimError("malformed", `claim message version ${body[0]} unsupported`);
  }
  const n = dv.getUint16(1);
  if (n > MAX_CLAIMS_PER_MESSAGE) throw new ClaimError("malformed", `too many claims (${n})`);
  const out: Claim[] = [];
  let o = 3;
  for (let i = 0; i < n; i++) {
    if (o + 2 > body.length) throw new ClaimError("malformed", "truncated claim message");
    const len = dv.getUint16(o);
    if (o + 2 + len > body.length) throw new ClaimError("malformed", "truncated claim message");
    out.push(decodeClaim(body.subarray(o + 2, o + 2 + len)));
    o += 2 + len;
  }
  if (o !== body.length) throw new ClaimError("malformed", "trailing bytes in claim message");
  return out;
}
