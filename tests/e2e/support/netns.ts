/**
 * Namespace bookkeeping: run-unique names, deletion that first reaps the processes still
 * inside, and the sweeper for namespaces left behind by crashed runs.
 *
 * Names look like `em-<pid>-<4 hex>-<role>`: the PID tells the sweeper whether the run that
 * made it is still alive; the random part keeps two topologies of one process apart.
 */

import { execIn, execInSync } from "./proc.ts";

const NAME = /^em-(\d+)-([0-9a-f]{4})-([a-z0-9-]+)$/;
/** Temp folders of the harness (support/tmp.ts, bundleOnce, tests): `em-<pid>-<kind>-…`. */
const DIR = /^em-(\d+)-(bundle|psk|manifests|agent-[a-z0-9-]+|meta-[a-z0-9-]+)-/;

/** A prefix unique to this process and call: `em-<pid>-<4 hex>`. */
export function runPrefix(): string {
  const rand = crypto.getRandomValues(new Uint16Array(1))[0].toString(16).padStart(4, "0");
  return `em-${Deno.pid}-${rand}`;
}

/** Every network namespace name on the host. */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await execIn(null, "ip", ["netns", "list"]);
  return parseList(stdout);
}

function parseList(stdout: string): string[] {
  return stdout.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter((n) => n.length > 0);
}

/** PIDs of processes inside `ns`. */
export async function pidsIn(ns: string): Promise<number[]> {
  const r = await execIn(null, "ip", ["netns", "pids", ns], { check: false });
  return r.stdout.split("\n").map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

function killPid(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch (err) {
    // Gone already.
    if (!(err instanceof Deno.errors.NotFound || err instanceof TypeError)) throw err;
  }
}

/**
 * Deletes `ns` after SIGKILLing whatever still runs inside (a process keeps a namespace and
 * its veths alive after `ip netns del`). Missing namespaces are fine.
 */
export async function deleteNamespace(ns: string): Promise<void> {
  for (const pid of await pidsIn(ns)) killPid(pid);
  const r = await execIn(null, "ip", ["netns", "del", ns], { check: false });
  if (r.code !== 0 && !/No such file|not found/i.test(r.stderr)) {
    throw new Error(`Cannot delete namespace ${ns}: ${r.stderr.trim()}`);
  }
}

/** Synchronous best-effort deletion for exit and signal handlers. */
export function deleteNamespaceSync(ns: string): void {
  const pids = execInSync(null, "ip", ["netns", "pids", ns]).stdout.split("\n").map(Number);
  for (const pid of pids) if (Number.isInteger(pid) && pid > 0) killPid(pid);
  execInSync(null, "ip", ["netns", "del", ns]);
}

/** Whether `pid` is a running process (a zombie counts as gone). */
function alive(pid: number): boolean {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  // "pid (comm) S …": the state follows the last ")".
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

/**
 * Deletes `em-<pid>-…` namespaces (and the harness's temp folders) whose creating process no
 * longer exists: earlier runs that crashed or were killed. Returns the namespaces deleted.
 * Live runs are never touched.
 */
export async function sweepStale(): Promise<string[]> {
  await sweepStaleDirs();
  const swept: string[] = [];
  for (const ns of await listNamespaces()) {
    const m = NAME.exec(ns);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === Deno.pid || alive(pid)) continue;
    await deleteNamespace(ns);
    swept.push(ns);
  }
  return swept;
}

async function sweepStaleDirs(): Promise<void> {
  const base = Deno.env.get("TMPDIR") || "/tmp";
  for await (const e of Deno.readDir(base)) {
    const m = DIR.exec(e.name);
    if (!m || !e.isDirectory) continue;
    const pid = Number(m[1]);
    if (pid === Deno.pid || alive(pid)) continue;
    try {
      await Deno.remove(`${base}/${e.name}`, { recursive: true });
    } catch (err) {
      // Another sweeper got there first.
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}
