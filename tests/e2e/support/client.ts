/** Real clients run inside a namespace: curl, with its timings. */

import type { Topology } from "../topology.ts";

export interface CurlResult {
  /** curl's exit code (0 = transfer done; 7 = could not connect; 28 = timeout). */
  exit: number;
  /** HTTP status (0 without a response). */
  status: number;
  body: string;
  /** Seconds → milliseconds, from curl's `-w` timings. */
  connectMs: number;
  totalMs: number;
  stderr: string;
}

const MARK = "\n@@curl@@";

/** `curl URL` from inside host `from`; never throws on HTTP or connection failure. */
export async function curl(
  topo: Topology,
  from: string,
  url: string,
  opts: { maxTimeS?: number; args?: string[] } = {},
): Promise<CurlResult> {
  const maxTime = opts.maxTimeS ?? 5;
  const r = await topo.exec(from, "curl", [
    "-sS",
    "--max-time",
    String(maxTime),
    "-w",
    `${MARK}%{http_code} %{time_connect} %{time_total}`,
    ...(opts.args ?? []),
    url,
  ], { check: false, timeoutMs: (maxTime + 5) * 1000 });
  const i = r.stdout.lastIndexOf(MARK);
  const [status, connect, total] = (i >= 0 ? r.stdout.slice(i + MARK.length) : "0 0 0").split(" ")
    .map(Number);
  return {
    exit: r.code,
    status,
    body: i >= 0 ? r.stdout.slice(0, i) : r.stdout,
    connectMs: connect * 1000,
    totalMs: total * 1000,
    stderr: r.stderr,
  };
}
