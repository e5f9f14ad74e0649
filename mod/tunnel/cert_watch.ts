/**
 * Follows the KubeEdge node certificate on disk: edgecore rotates it (at 70–90 % of its
 * lifetime), and a running agent must start signing its claim with the new one. Each check
 * compares the three files' size and mtime; on a change the identity is loaded again and, when
 * valid, handed to `onRenewed` (the tunnel re-signs its claim and sends it to its peers). An
 * invalid or half-written replacement is logged and the current identity kept. A certificate
 * that expires within a week without a replacement is warned about once a day.
 */

import type { Logger } from "../log/mod.ts";
import { Attestor, type CertIdentity } from "./attest.ts";

const EXPIRY_WARNING_MS = 7 * 24 * 3600_000;
const WARN_EVERY_MS = 24 * 3600_000;

export interface CertWatchDeps {
  files: CertIdentity;
  nodeName: string;
  logger: Logger;
  now: () => number;
  onRenewed: (attestor: Attestor) => Promise<void>;
  onResult?: (result: "renewed" | "invalid") => void;
}

export class CertWatch {
  #stamp = "";
  #warnedAt = -Infinity;
  #current: Attestor;

  /** `current` was loaded from the files as they are now. */
  private constructor(readonly deps: CertWatchDeps, current: Attestor) {
    this.#current = current;
  }

  static async start(deps: CertWatchDeps, current: Attestor): Promise<CertWatch> {
    const w = new CertWatch(deps, current);
    w.#stamp = await w.#readStamp();
    return w;
  }

  get current(): Attestor {
    return this.#current;
  }

  async #readStamp(): Promise<string> {
    const { certFile, keyFile, caFile } = this.deps.files;
    const parts = await Promise.all([certFile, keyFile, caFile].map(async (f) => {
      try {
        const s = await Deno.stat(f);
        return `${s.size}@${s.mtime?.getTime() ?? 0}`;
      } catch {
        return "missing";
      }
    }));
    return parts.join("|");
  }

  /** One look at the files; resolves after a renewal was handed on. Never throws. */
  async check(): Promise<void> {
    const { logger, now } = this.deps;
    const stamp = await this.#readStamp();
    if (stamp !== this.#stamp) {
      this.#stamp = stamp;
      try {
        const next = await Attestor.load(this.deps.files, this.deps.nodeName, now);
        await this.deps.onRenewed(next);
        this.#current = next;
        this.#warnedAt = -Infinity;
        this.deps.onResult?.("renewed");
        logger.info("node certificate reloaded", {
          certFile: this.deps.files.certFile,
          serial: next.cert.serialNumber,
          validTo: next.cert.validTo,
        });
      } catch (err) {
        // Also a rotation caught between writing the certificate and the key: the next
        // change of either file brings a new attempt.
        this.deps.onResult?.("invalid");
        logger.warn("the node certificate changed but cannot be used; keeping the current one", {
          error: err,
        });
      }
    }
    const left = Date.parse(this.#current.cert.validTo) - now();
    if (left < EXPIRY_WARNING_MS && now() - this.#warnedAt >= WARN_EVERY_MS) {
      this.#warnedAt = now();
      logger.warn("the node certificate expires soon and has not been renewed", {
        certFile: this.deps.files.certFile,
        validTo: this.#current.cert.validTo,
      });
    }
  }
}
