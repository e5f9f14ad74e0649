import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import {
  decodeClaim,
  decodeClaimMessage,
  encodeClaim,
  encodeClaimMessage,
  signClaim,
  verifyClaim,
} from "./claim.ts";
import { ClaimDirectory } from "./directory.ts";
import { ClaimError } from "./errors.ts";
import { PinStore } from "./identity.ts";

async function identity(node: string) {
  const key = await generateKeyPair("Ed25519");
  const peerId = peerIdFromPrivateKey(key).toString();
  return { key, peerId, claim: await signClaim(key, node, peerId, 1_700_000_000_000) };
}

Deno.test("a signed claim round-trips and verifies; a changed name or a foreign key does not", async () => {
  const a = await identity("edge-a");
  const b = await identity("edge-b");
  const back = decodeClaim(encodeClaim(a.claim));
  deepStrictEqual(back, a.claim);
  ok(await verifyClaim(back));
  equal(await verifyClaim({ ...a.claim, node: "edge-b" }), false);
  equal(await verifyClaim({ ...a.claim, peerId: b.peerId }), false);
  equal(await verifyClaim({ ...a.claim, ts: a.claim.ts + 1 }), false);
});

Deno.test("claim messages round-trip and malformed ones are refused", async () => {
  const cs = await Promise.all(["a", "b", "c"].map((n) => identity(n).then((x) => x.claim)));
  const msg = encodeClaimMessage(cs);
  const len = new DataView(msg.buffer).getUint32(0);
  equal(len, msg.length - 4);
  deepStrictEqual(decodeClaimMessage(msg.subarray(4)), cs);
  throws(() => decodeClaimMessage(msg.subarray(4, msg.length - 1)), ClaimError);
  throws(() => decodeClaimMessage(Uint8Array.from([2, 0, 0])), ClaimError);
  throws(() => decodeClaimMessage(Uint8Array.from([1, 0xff, 0xff])), ClaimError);
});

Deno.test("ClaimDirectory accepts known nodes, pins them, and refuses unknown names and conflicts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const self = await identity("self");
    const a = await identity("a");
    const a2 = await identity("a");
    const known = new Set(["self", "a"]);
    const pins = await PinStore.open(dir);
    const d = new ClaimDirectory(pins, () => known, self.claim);
    equal(await d.accept(a.claim), "ok");
    equal(d.peerOf("a"), a.peerId);
    equal(d.nodeOf(a.peerId), "a");
    equal(await d.accept(a2.claim), "conflict", "another key for a pinned name");
    equal(await d.accept((await identity("mallory")).claim), "unknown-node");
    equal(await d.accept({ ...a.claim, ts: a.claim.ts + 5 }), "signature");
    const rename = await signClaim(a.key, "self", a.peerId, 1);
    equal(await d.accept(rename), "conflict", "a pinned peer claiming a second name");
    await pins.flush();
    const reopened = await PinStore.open(dir);
    equal(reopened.get("a"), a.peerId, "pins survive a restart");
    known.delete("a");
    equal(d.nodeOf(a.peerId), undefined, "a node removed from the cluster is no longer resolved");
    ok(d.isExpelled(a.peerId));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
