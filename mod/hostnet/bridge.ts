/**
 * The bridge device (EdgeMesh's `edgemesh0`): a Linux bridge holding the bridge IP so DNS,
 * proxy and SOCKS5 have a stable local address. The `dummy` link type is missing on some
 * kernels, so a bridge it is. Created when needed, removed on stop only if we created it.
 */

import type { Logger } from "../log/mod.ts";
import type { Service, ServiceStatus } from "../lifecycle/mod.ts";
import { BridgeError } from "./errors.ts";
import { execRunner, type Runner } from "./run.ts";

export interface BridgeOptions {
  device: string;
  ip: string;
}

export interface BridgeDeps {
  logger: Logger;
  run?: Runner;
}

export class BridgeDevice implements Service {
  readonly name = "bridge";
  #created = false;
  #addedAddr = false;
  #state: ServiceStatus = { state: "stopped", detail: "" };
  readonly #run: Runner;

  constructor(private readonly deps: BridgeDeps, private readonly options: BridgeOptions) {
    this.#run = deps.run ?? execRunner;
  }

  #prefix(): string {
    return this.options.ip.includes(":") ? "128" : "32";
  }

  async #ip(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      return await this.#run("ip", args);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new BridgeError(
          this.options.device,
          this.options.ip,
          `the "ip" program (iproute2) is not installed`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  async start(_signal: AbortSignal): Promise<void> {
    const { device, ip } = this.options;
    this.#state = { state: "starting", detail: "" };
    const show = await this.#ip(["-o", "addr", "show", "dev", device]);
    if (show.code !== 0) {
      const add = await this.#ip(["link", "add", device, "type", "bridge"]);
      if (add.code !== 0) {
        const why = /Operation not permitted/i.test(add.stderr)
          ? "operation not permitted (run as root with CAP_NET_ADMIN, or set modules.edgeDNS.listenAddress, " +
            "modules.edgeProxy.listenAddress and socks5Proxy.listenAddress to an existing address)"
          : add.stderr.trim();
        throw new BridgeError(device, ip, why);
      }
      this.#created = true;
    }
    const has = show.code === 0 && show.stdout.split(/\s+/).some((w) => w.split("/")[0] === ip);
    if (!has) {
      const addr = await this.#ip(["addr", "add", `${ip}/${this.#prefix()}`, "dev", device]);
      if (addr.code !== 0 && !/File exists/.test(addr.stderr)) {
        await this.stop();
        throw new BridgeError(device, ip, addr.stderr.trim());
      }
      this.#addedAddr = addr.code === 0;
    }
    const up = await this.#ip(["link", "set", device, "up"]);
    if (up.code !== 0) {
      await this.stop();
      throw new BridgeError(device, ip, up.stderr.trim());
    }
    this.deps.logger.info("bridge device ready", { device, ip, created: this.#created });
    this.#state = { state: "ready", detail: `${device} ${ip}${this.#created ? " (created)" : ""}` };
  }

  async stop(): Promise<void> {
    const { device, ip } = this.options;
    if (this.#created) {
      const r = await this.#ip(["link", "del", device]);
      if (r.code !== 0) {
        this.deps.logger.warn("cannot remove bridge device", { device, error: r.stderr.trim() });
      } else this.deps.logger.info("bridge device removed", { device });
    } else if (this.#addedAddr) {
      await this.#ip(["addr", "del", `${ip}/${this.#prefix()}`, "dev", device]);
    }
    this.#created = false;
    this.#addedAddr = false;
    this.#state = { state: "stopped", detail: "" };
  }

  status(): ServiceStatus {
    return this.#state;
  }
}

/** `edgemesh cleanup`: removes the bridge device if it exists. Returns what it did. */
export async function removeBridge(device: string, run: Runner = execRunner): Promise<string> {
  const show = await run("ip", ["link", "show", device]);
  if (show.code !== 0) return `bridge ${device}: not present`;
  const del = await run("ip", ["link", "del", device]);
  if (del.code !== 0) {
    throw new Error(`cannot remove bridge device "${device}": ${del.stderr.trim()}`);
  }
  return `bridge ${device}: removed`;
}
