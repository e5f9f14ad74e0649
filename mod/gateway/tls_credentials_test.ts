import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { ClusterStore } from "../kube/mod.ts";
import type { CredentialError } from "./errors.ts";
import { CredentialStore, verifyClientChain } from "./tls_credentials.ts";

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  if (out.code !== 0) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A CA, a leaf it signed, and an unrelated self-signed certificate, made with openssl. */
async function pki(dir: string) {
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.crt`,
    "-subj",
    "/CN=test-ca",
  ]);
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${dir}/leaf.key`,
    "-out",
    `${dir}/leaf.csr`,
    "-subj",
    "/CN=client",
  ]);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${dir}/leaf.csr`,
    "-CA",
    `${dir}/ca.crt`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-out",
    `${dir}/leaf.crt`,
  ]);
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-keyout",
    `${dir}/other.key`,
    "-out",
    `${dir}/other.crt`,
    "-subj",
    "/CN=other",
  ]);
  const read = (n: string) => Deno.readTextFile(`${dir}/${n}`);
  return {
    ca: await read("ca.crt"),
    leaf: await read("leaf.crt"),
    leafKey: await read("leaf.key"),
    other: await read("other.crt"),
  };
}

Deno.test("verifyClientChain() accepts CA-signed and pinned certificates, refuses others and expired ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = await pki(dir);
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
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CredentialStore builds contexts from Secrets, explains bad ones, and rebuilds on change", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = await pki(dir);
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
    await Deno.remove(dir, { recursive: true });
  }
});
