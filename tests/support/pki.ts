/**
 * Test PKI: CAs, certificates they sign and self-signed ones, made with the `openssl` CLI in a
 * temp dir (the one place tests make certificates).
 */

import type { CertIdentity } from "../../mod/tunnel/mod.ts";

export type KeyKind = "ec" | "rsa" | "ed25519";

export interface TestCa {
  name: string;
  certFile: string;
  keyFile: string;
}

export interface NodeCertSpec {
  /** Subject, e.g. `/O=system:nodes/CN=system:node:a` (the KubeEdge form, the default). */
  subject?: string;
  /** SAN DNS names. */
  dns?: string[];
  /** SAN IP addresses. */
  ips?: string[];
  /** Validity in days; negative gives an expired certificate (default 30). */
  days?: number;
  key?: KeyKind;
}

const GENPKEY: Record<KeyKind, string[]> = {
  ec: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
  rsa: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
  ed25519: ["-algorithm", "ed25519"],
};

/** Runs `openssl`; a missing tool or a failure throws (tests must not skip). */
export async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

export class TestPki {
  #n = 0;
  private constructor(readonly dir: string) {}

  /** In `dir` (removed by close()), else in a new temp dir. */
  static async create(dir?: string): Promise<TestPki> {
    if (dir) await Deno.mkdir(dir, { recursive: true });
    return new TestPki(dir ?? await Deno.makeTempDir({ prefix: `pki-${Deno.pid}-` }));
  }

  #path(name: string): string {
    return `${this.dir}/${++this.#n}-${name}`;
  }

  async key(kind: KeyKind = "ec"): Promise<string> {
    const file = this.#path(`${kind}.key`);
    await openssl(["genpkey", ...GENPKEY[kind], "-out", file]);
    return file;
  }

  async ca(name: string, days = 30): Promise<TestCa> {
    const keyFile = await this.key("ec");
    const certFile = this.#path(`${name}-ca.crt`);
    await openssl([
      "req",
      "-x509",
      "-new",
      "-key",
      keyFile,
      "-subj",
      `/CN=${name}`,
      "-days",
      String(days),
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      certFile,
    ]);
    return { name, certFile, keyFile };
  }

  /** A node certificate of `ca` for `node`, as `modules.edgeTunnel.identity`. */
  async node(ca: TestCa, node: string, spec: NodeCertSpec = {}): Promise<CertIdentity> {
    const keyFile = await this.key(spec.key ?? "ec");
    const csr = this.#path(`${node}.csr`);
    const certFile = this.#path(`${node}.crt`);
    await openssl([
      "req",
      "-new",
      "-key",
      keyFile,
      "-subj",
      spec.subject ?? `/O=system:nodes/CN=system:node:${node}`,
      "-out",
      csr,
    ]);
    const args = [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      ca.certFile,
      "-CAkey",
      ca.keyFile,
      "-set_serial",
      String(1000 + this.#n),
      "-days",
      String(spec.days ?? 30),
      "-out",
      certFile,
    ];
    const san = [
      ...(spec.dns ?? []).map((d) => `DNS:${d}`),
      ...(spec.ips ?? []).map((i) => `IP:${i}`),
    ];
    if (san.length) {
      const ext = this.#path(`${node}.ext`);
      await Deno.writeTextFile(ext, `subjectAltName=${san.join(",")}\n`);
      args.push("-extfile", ext);
    }
    await openssl(args);
    return { certFile, keyFile, caFile: ca.certFile };
  }

  /**
   * A self-signed certificate with subject CN `cn` and, by default, SANs `DNS:<cn>` and
   * `IP:127.0.0.1` (what a TLS client on loopback checks).
   */
  async selfSigned(
    cn: string,
    o: { key?: KeyKind; days?: number; san?: string[] } = {},
  ): Promise<{ certFile: string; keyFile: string }> {
    const keyFile = await this.key(o.key ?? "ec");
    const certFile = this.#path(`${cn}.crt`);
    const san = o.san ?? [`DNS:${cn}`, "IP:127.0.0.1"];
    await openssl([
      "req",
      "-x509",
      "-new",
      "-key",
      keyFile,
      "-subj",
      `/CN=${cn}`,
      "-days",
      String(o.days ?? 2),
      ...(san.length ? ["-addext", `subjectAltName=${san.join(",")}`] : []),
      "-out",
      certFile,
    ]);
    return { certFile, keyFile };
  }

  async close(): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}
