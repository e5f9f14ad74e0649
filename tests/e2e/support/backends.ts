/** Starts `backends_main.ts` inside a node, bound to the node's address. */

import type { Topology } from "../topology.ts";
import { denoIn, readyLine } from "./deno_run.ts";
import type { NsProcess } from "./proc.ts";

export { pattern } from "./backends_main.ts";

export interface BackendPorts {
  /** Port numbers; 0 picks a free one. Omit a protocol to not start it. */
  http?: number;
  udp?: number;
  tcp?: number;
}

export interface Backends {
  proc: NsProcess;
  name: string;
  host: string;
  http?: number;
  udp?: number;
  tcp?: number;
  /** `http://host:port` of the HTTP backend. */
  url: string;
}

/** Starts the backends inside host `name` (default: HTTP on port 8080), named after the host. */
export async function startBackends(
  topo: Topology,
  name: string,
  ports: BackendPorts = { http: 8080 },
  opts: { backendName?: string; host?: string } = {},
): Promise<Backends> {
  const host = opts.host ?? topo.ip(name);
  const args = ["--name", opts.backendName ?? name, "--host", host];
  for (const k of ["http", "udp", "tcp"] as const) {
    if (ports[k] !== undefined) args.push(`--${k}`, String(ports[k]));
  }
  const proc = denoIn(topo, name, new URL("./backends_main.ts", import.meta.url), args, {
    allow: ["--allow-net", "--unstable-net"],
    label: `${name}: backends`,
  });
  const r = await readyLine<Omit<Backends, "proc" | "url">>(proc);
  return { ...r, proc, url: r.http ? `http://${host}:${r.http}` : "" };
}
