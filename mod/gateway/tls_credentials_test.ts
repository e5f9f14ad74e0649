import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { ClusterStore } from "../kube/mod.ts";
import type { CredentialError } from "./errors.ts";
import { CredentialStore, verifyClientChain } from "./tls_credentials.ts";
import { TestPki } from "../../tests/support/pki.ts";

/** A CA, a leaf it signed, and an unrelated self-signed certificate, as PEM text. */
async function pki(t: TestPki) {
  const ca = await t.ca("test-ca", 2);
  const leaf = await t.node(ca, "client", { subject: "/CN=client", days: 2, key: "rsa" });
  const other = await t.selfSigned("other", { key: "rsa", days: 2, san: [] });
  const read = (f: string) => Deno.readTextFile(f);
  return {
    ca: await read(ca.certFile),
    leaf: await read(leaf.certFile),
    leafKey: await read(leaf.keyFile),
    other: await read(other.certFile),
  };
}

Deno.test("verifyClientChain() accepts CA-signed and pinned certificates, refuses others and expired ones", async () => {
  const t = await TestPki.create();
  try {
    const p = await pki(t);
    const ca = new X509Certificate(p.ca);
    const leaf = new X509Certificate(p.leaf);
    const other = new X509Certificate(p.other);
    assertEquals(verifyClientChain([leaf], [ca]), undefined);
    assertEquals(
      verifyClientChain([other], [other]),
      undefined,
      "a self-signed certificate listed as CA",
    );
    assert(verifyClientChain([other], [ca])?.includes("no trusted issuer"));
    assert(verifyClientChain([], [ca])?.includes("no client certificate"));
    assert(
      verifyClientChain([leaf], [ca], new Date(Date.now() + 10 * 86400_000))?.includes(
        "not valid now",
      ),
    );
  } finally {
    await t.close();
  }
});

Deno.test("CredentialStore builds contexts from Secrets, explains bad ones, and rebuilds on change", async () => {
  const t = await TestPki.create();
  try {
    const p = await pki(t);
    const store = new ClusterStore();
    const creds = new CredentialStore(store);
    const simple = { mode: "SIMPLE" as const, credential: "ns/s" };
    const mutual = { mode: "MUTUAL" as const, credential: "ns/s" };
    const b64 = (s: string) => btoa(s);
    assert((creds.get(simple) as CredentialError).message.includes("not found"));
    store.upsert("secrets", {
      metadata: { name: "s", namespace: "ns" },
      type: "kubernetes.io/tls",
      data: { "tls.crt": b64(p.leaf), "tls.key": b64(p.leafKey) },
    });
    assert("context" in creds.get(simple));
    assert((creds.get(mutual) as CredentialError).message.includes("ca.crt"));
    store.upsert("secrets", {
      metadata: { name: "s-cacert", namespace: "ns" },
      data: { "ca.crt": b64(p.ca) },
    });
    const m = creds.get(mutual);
    assert("cas" in m && m.cas.length === 1, "ca.crt from the <name>-cacert Secret");
    store.upsert("secrets", {
      metadata: { name: "s", namespace: "ns" },
      data: { "tls.crt": "!!!", "tls.key": b64(p.leafKey) },
    });
    assert((creds.get(simple) as CredentialError).message.includes("not base64"));
    store.upsert("secrets", {
      metadata: { name: "s", namespace: "ns" },
      data: { "tls.crt": b64(p.leaf), "tls.key": b64("junk") },
    });
    assert((creds.get(simple) as CredentialError).message.includes("does not parse"));
  } finally {
    await t.close();
  }
});
