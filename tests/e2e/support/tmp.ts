/** Temporary folders that live exactly as long as a topology. */

import type { Topology } from "../topology.ts";

/** Removes a folder tree; a missing one is fine. */
export async function removeDir(dir: string): Promise<void> {
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Makes a temp folder removed at the topology's teardown. */
export async function tempDir(topo: Topology, prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `em-${Deno.pid}-${prefix}-` });
  topo.defer(() => removeDir(dir));
  return dir;
}
