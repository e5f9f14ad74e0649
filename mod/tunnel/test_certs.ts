/** Test PKI: CAs and node certificates made with the `openssl` CLI in a temp dir. */

import type { CertIdentity } from "./attest.ts";

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

  static async create(): Promise<TestPki> {
    return new TestPki(await Deno.makeTempDir({ prefix: `attest-${Deno.pid}-` }));
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
    if (spec.dns?.length) {
      const ext = this.#path(`${node}.ext`);
      await Deno.writeTextFile(
        ext,
        `subjectAltName=${spec.dns.map((d) => `DNS:${d}`).join(",")}\n`,
      );
      args.push("-extfile", ext);
    }
    await openssl(args);
    return { certFile, keyFile, caFile: ca.certFile };
  }

  async close(): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}
