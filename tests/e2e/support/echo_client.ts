/** WebSocket and UDP echo clients run inside a namespace (see echo_client_main.ts). */

import type { Topology } from "../topology.ts";
import { ROOT } from "./deno_run.ts";

export interface EchoResult {
  ok: boolean;
  reply: string;
  error: string;
  ms: number;
}

/** Sends `message` to `host:port` from inside `from` and returns the first echo. */
export async function echo(
  topo: Topology,
  from: string,
  mode: "ws" | "udp",
  host: string,
  port: number,
  message: string,
  timeoutMs = 3000,
): Promise<EchoResult> {
  const t0 = performance.now();
  const r = await topo.exec(from, Deno.execPath(), [
    "run",
    "--quiet",
    `--config=${ROOT}deno.json`,
    "--allow-net",
    "--unstable-net",
    new URL("./echo_client_main.ts", import.meta.url).pathname,
    mode,
    host,
    String(port),
    message,
    String(timeoutMs),
  ], { check: false, timeoutMs: timeoutMs + 10_000 });
  return {
    ok: r.code === 0,
    reply: r.stdout.trim(),
    error: r.stderr.trim(),
    ms: performance.now() - t0,
  };
}
