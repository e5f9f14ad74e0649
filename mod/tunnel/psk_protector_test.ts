import { deepStrictEqual as assertEquals } from "node:assert/strict";
import xsalsa20Package from "xsalsa20";
import { XSalsa20Stream } from "./psk_protector.ts";

Deno.test("XSalsa20Stream matches the keystream @libp2p/pnet's cipher produces, for any chunking", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(24));
  const ours = new XSalsa20Stream(key, nonce);
  const theirs = xsalsa20Package(nonce, key);
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 400; i++) {
    const n = [0, 1, 63, 64, 65, 127, 4096, 65536][i % 8] + Math.floor(rand() * 100);
    const data = crypto.getRandomValues(new Uint8Array(Math.min(n, 65536)));
    assertEquals(ours.update(data), theirs.update(data));
  }
});

Deno.test("XSalsa20Stream decrypts what it encrypts across 64 MiB in chunks that are not block-aligned", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(24));
  const enc = new XSalsa20Stream(key, nonce);
  const dec = new XSalsa20Stream(key, nonce);
  const chunk = new Uint8Array(65536 + 17).map((_, i) => (i * 31) & 255);
  for (let i = 0; i < 1024; i++) {
    const back = dec.update(enc.update(chunk));
    if (i % 128 === 0) assertEquals(back, chunk);
  }
});
