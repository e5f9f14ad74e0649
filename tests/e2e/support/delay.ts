/**
 * A delaying TCP forwarder (this kernel has no `tc netem`): every chunk read from one side is
 * written to the other `delayMs` later, in order, so each direction gains `delayMs` of
 * one-way latency and a round trip `2 × delayMs`. Runs as its own process inside a namespace.
 */

import type { Topology } from "../topology.ts";
import { denoIn, readyLine } from "./deno_run.ts";
import type { NsProcess } from "./proc.ts";

export interface DelayOptions {
  /** `host:port` to listen on inside the namespace (port 0: any). */
  listen: string;
  /** `host:port` to forward to (as seen from inside the namespace). */
  target: string;
  /** One-way delay added in each direction. */
  delayMs: number;
}

/** Starts the forwarder inside host `name`; resolves once it listens. */
export async function delayForwarder(
  topo: Topology,
  name: string,
  opts: DelayOptions,
): Promise<{ proc: NsProcess; port: number }> {
  const proc = denoIn(topo, name, new URL("./delay_forwarder_main.ts", import.meta.url), [
    opts.listen,
    opts.target,
    String(opts.delayMs),
  ], { label: `${name}: delay ${opts.listen} -> ${opts.target} +${opts.delayMs}ms` });
  const ready = await readyLine<{ port: number }>(proc);
  return { proc, port: ready.port };
}
