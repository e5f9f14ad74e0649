/** Runs a TypeScript helper script of this repository inside a namespace of a topology. */

import type { Topology } from "../topology.ts";
import type { NsProcess } from "./proc.ts";

/** The repository root (ends with "/"). */
export const ROOT = new URL("../../../", import.meta.url).pathname;

export interface DenoRunOptions {
  /** Permission flags (default `--allow-net`). */
  allow?: string[];
  label?: string;
  stdin?: boolean;
}

/**
 * `deno run` of `script` (a path, or a URL from `import.meta.resolve`) inside host `name`,
 * with the repository's deno.json so bare imports resolve. The process belongs to `topo`.
 */
export function denoIn(
  topo: Topology,
  name: string,
  script: string | URL,
  args: string[],
  opts: DenoRunOptions = {},
): NsProcess {
  const path = script instanceof URL ? script.pathname : script;
  return topo.spawn(
    name,
    Deno.execPath(),
    [
      "run",
      "--quiet",
      `--config=${ROOT}deno.json`,
      ...(opts.allow ?? ["--allow-net"]),
      path,
      ...args,
    ],
    {
      cwd: ROOT,
      label: opts.label ?? `${name}: ${path.slice(path.lastIndexOf("/") + 1)}`,
      stdin: opts.stdin,
    },
  );
}

/** Waits for the first stdout line that parses as JSON with `ready: true` and returns it. */
export async function readyLine<T = Record<string, unknown>>(
  p: NsProcess,
  timeoutMs = 15_000,
): Promise<T> {
  const line = await p.waitLine(
    (t, l) => l.stream === "stdout" && parseReady(t) !== undefined,
    "ready line",
    timeoutMs,
  );
  return parseReady(line) as T;
}

function parseReady(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" && v.ready === true ? v : undefined;
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}
