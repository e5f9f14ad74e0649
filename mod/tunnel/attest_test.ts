import { equal, ok, rejects, throws } from "node:assert/strict";
import { generateKeyPair } from "@libp2p/crypto/keys";
import type { PrivateKey } from "@libp2p/interface";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { memoryLogger } from "../log/mod.ts";
import { Attestor, type CertIdentity } from "./attest.ts";
import {
  type Claim,
  decodeClaim,
  decodeClaimMessage,
  encodeClaim,
  encodeClaimMessage,
  MAX_CLAIM_MESSAGE_BYTES,
  signClaim,
  verifyClaim,
} from "./claim.ts";
import { ClaimDirectory } from "./directory.ts";
import { ClaimError, IdentityError } from "./errors.ts";
import { PinStore } from "./identity.ts";
import { TestPki } from "../../tests/support/pki.ts";

const DAY = 86_400_000;

async function peer(): Promise<{ key: PrivateKey; peerId: string }> {
  const key = await generateKeyPair("Ed25519");
  return { key, peerId: peerIdFromPrivateKey(key).toString() };
}

/** A claim by a fresh libp2p key for `node`, attested by `att`. */
async function attested(att: Attestor, ts = Date.now()) {
  const p = await peer();
  return { ...p, claim: att.attest(await signClaim(p.key, att.nodeName, p.peerId, ts)) };
}

async function loadError(
  files: CertIdentity,
  node: string,
  now?: () => number,
): Promise<IdentityError> {
  let caught: unknown;
  await Attestor.load(files, node, now).catch((e) => (caught = e));
  ok(caught instanceof IdentityError, `expected an IdentityError, got ${caught}`);
  return caught;
}

function wantError(e: IdentityError, path: string, text: string): void {
  equal(e.path, path);
  ok(e.message.includes(path), e.message);
  ok(e.message.includes(text), `"${e.message}" lacks "${text}"`);
}

Deno.test("KubeEdge-style certificates (ECDSA, RSA, Ed25519) load and their attested claims verify", async () => {
  const pki = await TestPki.create();
  try {
    const ca = await pki.ca("kubeedge");
    const a = await Attestor.load(await pki.node(ca, "edge-a"), "edge-a");
    const b = await Attestor.load(
      await pki.node(ca, "edge-b", { subject: "/CN=edge-b", key: "rsa" }),
      "edge-b",
    );
    const c = await Attestor.load(
      await pki.node(ca, "edge-c", {
        subject: "/CN=whatever",
        dns: ["x", "edge-c"],
        key: "ed25519",
      }),
      "edge-c",
    );
    for (const att of [a, b, c]) {
      const { claim } = await attested(att);
      const back = decodeClaim(encodeClaim(claim));
      ok(back.att && back.att.cert.length === att.certDer.length);
      ok(await verifyClaim(back), "the libp2p signature still verifies");
      for (const verifier of [a, b, c]) {
        equal(verifier.verify(back), undefined, `${verifier.nodeName} verifies ${att.nodeName}`);
      }
    }
  } finally {
    await pki.close();
  }
});

Deno.test("loading refuses a bad identity with an error naming the file and the problem", async () => {
  const pki = await TestPki.create();
  try {
    const ca = await pki.ca("kubeedge");
    const other = await pki.ca("other");
    const good = await pki.node(ca, "a");

    const foreign = await pki.node(other, "a");
    wantError(
      await loadError({ ...foreign, caFile: ca.certFile }, "a"),
      foreign.certFile,
      "is not issued by the CA",
    );
    const expired = await pki.node(ca, "a", { days: -1 });
    wantError(await loadError(expired, "a"), expired.certFile, "expired on");
    wantError(
      await loadError(good, "a", () => Date.now() - 2 * DAY),
      good.certFile,
      "not valid before",
    );
    wantError(await loadError(good, "b"), good.certFile, `names "a", not node "b"`);
    const legacy = await pki.node(ca, "a", { subject: "/O=kubeEdge/CN=kubeedge.io" });
    wantError(await loadError(legacy, "a"), legacy.certFile, `not node "a"`);
    // A CN that a text rendering of the subject would split into two names.
    const forged = await pki.node(ca, "x", { subject: "/CN=x\nCN=a" });
    wantError(await loadError(forged, "a"), forged.certFile, `not node "a"`);
    const mismatch = { ...good, keyFile: foreign.keyFile };
    wantError(await loadError(mismatch, "a"), foreign.keyFile, "does not match the certificate");
    const missing = { ...good, certFile: `${pki.dir}/nope.crt` };
    wantError(await loadError(missing, "a"), missing.certFile, "cannot read the node certificate");
    const notPem = { ...good, keyFile: good.certFile };
    wantError(await loadError(notPem, "a"), good.certFile, "not an unencrypted PEM private key");
    const notCa = { ...good, caFile: foreign.certFile };
    wantError(await loadError(notCa, "a"), foreign.certFile, "is not a CA certificate");
    const garbage = `${pki.dir}/garbage.pem`;
    await Deno.writeTextFile(garbage, "hello\n");
    wantError(await loadError({ ...good, caFile: garbage }, "a"), garbage, "no PEM CERTIFICATE");
  } finally {
    await pki.close();
  }
});

Deno.test("attestations that are tampered, foreign, expired, misnamed or missing are refused", async () => {
  const pki = await TestPki.create();
  try {
    const ca = await pki.ca("kubeedge");
    const other = await pki.ca("other");
    const now = { t: Date.now() };
    const a = await Attestor.load(await pki.node(ca, "a"), "a", () => now.t);
    const a2 = await Attestor.load(await pki.node(ca, "a"), "a");
    const b = await Attestor.load(await pki.node(ca, "b"), "b");
    const foreignA = await Attestor.load(
      { ...(await pki.node(other, "a")), caFile: other.certFile },
      "a",
    );
    const { claim } = await attested(b);
    equal(a.verify(claim), undefined);
    const mismatch = "the certificate's signature does not match the claim";
    equal(a.verify({ ...claim, ts: claim.ts + 1 }), mismatch);
    const p = await peer();
    equal(a.verify({ ...claim, peerId: p.peerId }), mismatch);
    ok(a.verify({ ...claim, node: "a" })?.includes(`names "b", not node "a"`));
    const flipped = Uint8Array.from(claim.att!.sig);
    flipped[10] ^= 1;
    equal(a.verify({ ...claim, att: { ...claim.att!, sig: flipped } }), mismatch);
    // Another valid certificate of the same node cannot carry this key's signature.
    const onA = await attested(a2);
    const swapped: Claim = { ...onA.claim, att: { ...onA.claim.att!, cert: a.certDer } };
    equal(a.verify(swapped), mismatch);
    ok(a.verify((await attested(foreignA)).claim)?.includes("is not issued by the CA"));
    equal(a.verify({ ...claim, att: undefined }), "the claim carries no certificate attestation");
    equal(
      a.verify({ ...claim, att: { cert: new Uint8Array(20), sig: claim.att!.sig } }),
      "the attestation's certificate cannot be parsed",
    );
    now.t += 60 * DAY;
    ok(a.verify(claim)?.includes("expired on"), "checked against the clock at each use");
    throws(() => a.attest({ ...claim, att: undefined }), /cannot attest a claim for "b"/);
  } finally {
    await pki.close();
  }
});

Deno.test("claim wire versions: 1 without an attestation, 2 with one, bounded", async () => {
  const pki = await TestPki.create();
  try {
    const ca = await pki.ca("kubeedge");
    const a = await Attestor.load(await pki.node(ca, "a"), "a");
    const { claim } = await attested(a);
    const plain: Claim = { ...claim };
    delete plain.att;
    const v1 = encodeClaim(plain);
    const v2 = encodeClaim(claim);
    equal(v1[0], 1);
    equal(v2[0], 2);
    equal("att" in decodeClaim(v1), false);
    ok(await verifyClaim(decodeClaim(v1)), "stripping the attestation leaves a valid v1 claim");
    throws(() => decodeClaim(v2.subarray(0, v2.length - 1)), ClaimError);
    throws(() => decodeClaim(Uint8Array.from([...v2, 0])), ClaimError);
    const big = { ...claim, att: { cert: new Uint8Array(8 * 1024 + 1), sig: claim.att!.sig } };
    throws(() => encodeClaim(big), ClaimError);
    const oversize = Uint8Array.from(v2);
    const at = v1.length; // the certificate length follows the libp2p signature
    new DataView(oversize.buffer).setUint16(at, 8 * 1024 + 1);
    throws(() => decodeClaim(oversize), /certificate of 8193 bytes/);
    const msg = encodeClaimMessage([claim, plain]);
    const back = decodeClaimMessage(msg.subarray(4));
    equal(back.length, 2);
    ok(back[0].att && !back[1].att);
    // Large attestations: the message stays within its bound, own claim first.
    const fat = { ...claim, att: { cert: new Uint8Array(8 * 1024), sig: claim.att!.sig } };
    const many = encodeClaimMessage([claim, ...Array(1000).fill(fat)]);
    ok(many.length - 4 <= MAX_CLAIM_MESSAGE_BYTES, `${many.length}`);
    const decoded = decodeClaimMessage(many.subarray(4));
    ok(decoded.length > 400 && decoded.length < 1001, `${decoded.length}`);
    equal(decoded[0].att?.cert.length, claim.att!.cert.length);
  } finally {
    await pki.close();
  }
});

Deno.test("with a certificate verifier the directory requires attestations and a re-keyed node replaces its pin", async () => {
  const pki = await TestPki.create();
  const state = await Deno.makeTempDir({ prefix: `attest-dir-${Deno.pid}-` });
  try {
    const ca = await pki.ca("kubeedge");
    const self = await Attestor.load(await pki.node(ca, "self"), "self");
    const a = await Attestor.load(await pki.node(ca, "a"), "a");
    const b = await Attestor.load(await pki.node(ca, "b"), "b");
    const known = new Set(["self", "a", "b"]);
    const pins = await PinStore.open(state);
    const me = await attested(self);
    const mem = memoryLogger();
    const d = new ClaimDirectory(pins, () => known, me.claim, {
      verifier: self,
      logger: mem.logger,
    });
    const t0 = Date.now();
    const a1 = await attested(a, t0);
    const bare: Claim = { ...a1.claim };
    delete bare.att;
    const noAtt = await d.check(bare);
    equal(noAtt.verdict, "attestation");
    equal(noAtt.detail, "the claim carries no certificate attestation");
    equal(pins.get("a"), undefined, "nothing pinned for a refused claim");
    equal(await d.accept(a1.claim), "ok");
    equal(pins.get("a"), a1.peerId);
    // Reinstalled: a new libp2p key, the same certificate.
    const a2 = await attested(a, t0 + 1000);
    equal(await d.accept(a2.claim), "ok");
    equal(d.peerOf("a"), a2.peerId);
    equal(pins.get("a"), a2.peerId);
    equal(d.nodeOf(a1.peerId), undefined, "the old peer no longer resolves");
    ok(mem.lines.some((l) => String(l.msg).includes("re-keyed") && l.oldPeerId === a1.peerId));
    const stale = await d.check(a1.claim);
    equal(stale.verdict, "conflict", "the older claim does not win back");
    ok(stale.detail?.includes("newer attested claim"));
    // Our own name, a valid certificate of it, another peer: refused.
    equal((await d.check((await attested(self)).claim)).verdict, "conflict");
    // A pinned peer claiming a second name, even with that name's certificate.
    const bByA2: Claim = b.attest(await signClaim(a2.key, "b", a2.peerId, t0));
    equal((await d.check(bByA2)).verdict, "conflict");
    equal((await d.check({ ...a2.claim, ts: a2.claim.ts + 5 })).verdict, "signature");
    await pins.flush();
    equal((await PinStore.open(state)).get("a"), a2.peerId, "the new pin is saved");
  } finally {
    await pki.close();
    await Deno.remove(state, { recursive: true });
  }
});

Deno.test("without a verifier attestations are carried but not required", async () => {
  const pki = await TestPki.create();
  const state = await Deno.makeTempDir({ prefix: `attest-dir-${Deno.pid}-` });
  try {
    const ca = await pki.ca("kubeedge");
    const a = await Attestor.load(await pki.node(ca, "a"), "a");
    const self = await peer();
    const d = new ClaimDirectory(
      await PinStore.open(state),
      () => new Set(["self", "a", "b"]),
      await signClaim(self.key, "self", self.peerId, Date.now()),
    );
    const a1 = await attested(a);
    equal(await d.accept(a1.claim), "ok");
    ok(d.all()[1].att, "forwarded with its attestation");
    const b = await peer();
    equal(await d.accept(await signClaim(b.key, "b", b.peerId, Date.now())), "ok");
    equal(await d.accept((await attested(a)).claim), "conflict", "TOFU pins still rule");
    await rejects(
      () => Attestor.load({ certFile: "", keyFile: "", caFile: "" }, "a"),
      IdentityError,
    );
  } finally {
    await pki.close();
    await Deno.remove(state, { recursive: true });
  }
});
