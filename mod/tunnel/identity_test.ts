import { equal, rejects } from "node:assert/strict";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { IdentityError } from "./errors.ts";
import { KEY_FILE, loadOrCreateIdentity } from "./identity.ts";

Deno.test("loadOrCreateIdentity() creates an Ed25519 key with mode 0600 once and reuses it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const k1 = await loadOrCreateIdentity(`${dir}/state`);
    equal(k1.type, "Ed25519");
    equal((await Deno.stat(`${dir}/state/${KEY_FILE}`)).mode! & 0o777, 0o600);
    const k2 = await loadOrCreateIdentity(`${dir}/state`);
    equal(peerIdFromPrivateKey(k2).toString(), peerIdFromPrivateKey(k1).toString());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadOrCreateIdentity() refuses a corrupt key file instead of replacing it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/${KEY_FILE}`, Uint8Array.from([1, 2, 3]));
    await rejects(loadOrCreateIdentity(dir), IdentityError);
    await Deno.writeFile(`${dir}/${KEY_FILE}`, Uint8Array.from([9, 2, 3]));
    await rejects(loadOrCreateIdentity(dir), /version 9/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
