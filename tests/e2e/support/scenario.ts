/**
 * One end-to-end scenario = one `Deno.test` with its own topology, a deadline, and every
 * process's output printed when it fails.
 *
 * ```ts
 * e2eTest("a1 reaches a service on b1 through a relay", issue9(), async (topo) => { … });
 * ```
 */

import { Topology, type TopologySpec } from "../topology.ts";

export interface ScenarioOptions {
  /** Whole-scenario deadline (default 60 000 ms). */
  timeoutMs?: number;
  /** Print the logs even on success. */
  verbose?: boolean;
  ignore?: boolean;
  only?: boolean;
}

/** Builds `spec`, runs `fn`, prints all logs if it fails, always tears down. */
export async function withTopology(
  name: string,
  spec: TopologySpec | undefined,
  fn: (topo: Topology) => Promise<void>,
  opts: ScenarioOptions = {},
): Promise<void> {
  await using topo = await Topology.create(spec);
  const limit = opts.timeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`scenario "${name}" did not finish within ${limit} ms`)),
      limit,
    );
  });
  try {
    await Promise.race([fn(topo), deadline]);
    if (opts.verbose) console.error(topo.dumpLogs());
  } catch (err) {
    console.error(
      `\n===== logs of failed scenario "${name}" (${topo.prefix}) =====\n${topo.dumpLogs()}\n=====`,
    );
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Registers a scenario as a test. */
export function e2eTest(
  name: string,
  spec: TopologySpec | undefined,
  fn: (topo: Topology) => Promise<void>,
  opts: ScenarioOptions = {},
): void {
  Deno.test({
    name,
    ignore: opts.ignore,
    only: opts.only,
    fn: () => withTopology(name, spec, fn, opts),
  });
}
