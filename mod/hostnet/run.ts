/** Running host tools (ip, iptables-restore): injectable so tests can run them in a namespace. */

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Runner = (cmd: string, args: readonly string[], stdin?: string) => Promise<RunResult>;

/** Runs the program directly. */
export const execRunner: Runner = async (cmd, args, stdin) => {
  const child = new Deno.Command(cmd, {
    args: [...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

/** Runs programs inside a network namespace (`ip netns exec NS cmd …`), for tests. */
export function netnsRunner(ns: string): Runner {
  return (cmd, args, stdin) => execRunner("ip", ["netns", "exec", ns, cmd, ...args], stdin);
}
