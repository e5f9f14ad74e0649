/**
 * Config fragments for agents in a topology, in the keys of CONTRACTS.md / mod/config: merge
 * them into `startAgent({ config })`. Each is validated by topology_test.ts against the real
 * schema, so a renamed key fails there first.
 *
 * ```ts
 * const psk = await sharedPsk(topo);
 * await startAgent(topo, "a1", {
 *   bundle, extraRead: [psk.dir],
 *   config: meshConfig(topo, { pskPath: psk.path, modules: ["tunnel", "proxy", "dns"] }),
 * });
 * ```
 */

import type { Topology } from "../topology.ts";
import { deepMerge, type Obj } from "./agent.ts";
import { relayNodes } from "./cluster.ts";
import { tempDir } from "./tmp.ts";

/** A PSK file (32 random bytes, base64) readable by every agent of the topology. */
export async function sharedPsk(topo: Topology): Promise<{ dir: string; path: string }> {
  const dir = await tempDir(topo, "psk");
  const path = `${dir}/psk`;
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  await Deno.writeTextFile(path, btoa(String.fromCharCode(...bytes)) + "\n");
  return { dir, path };
}

export type ModuleName = "tunnel" | "proxy" | "dns" | "health";

export interface MeshOptions {
  pskPath: string;
  /** Modules switched on (the rest stay off). */
  modules: ModuleName[];
  /** Relay names (default: every relay of the topology). */
  relays?: string[];
  holePunch?: boolean;
  mdns?: boolean;
  lanDirect?: boolean;
  /** DNS forwarders; tests always use a loopback one (default 127.0.0.1:53, nothing there). */
  upstreamServers?: string[];
  /** Health timings fast enough for tests (default true). */
  fastHealth?: boolean;
  /** Extra overrides merged last. */
  extra?: Obj;
}

/** Module config for a node of the mesh. */
export function meshConfig(topo: Topology, o: MeshOptions): Obj {
  const on = (m: ModuleName) => o.modules.includes(m);
  const fast = o.fastHealth ?? true;
  const cfg: Obj = {
    modules: {
      edgeTunnel: {
        enable: on("tunnel"),
        relayNodes: relayNodes(topo, o.relays),
        psk: { enable: true, path: o.pskPath },
        enableHolePunch: o.holePunch ?? true,
        mdns: { enable: o.mdns ?? true },
      },
      edgeProxy: { enable: on("proxy"), lanDirect: o.lanDirect ?? true },
      edgeDNS: { enable: on("dns"), upstreamServers: o.upstreamServers ?? ["127.0.0.1:53"] },
      edgeHealth: fast
        ? { enable: on("health"), probeInterval: "500ms", probeTimeout: "300ms", voteTimeout: "3s" }
        : { enable: on("health") },
    },
  };
  return o.extra ? deepMerge(cfg, o.extra) : cfg;
}
