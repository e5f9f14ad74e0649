/**
 * Benchmark helpers: rounds with median/min/max, ratios against a reference measured in the
 * same invocation, a table printer, and process helpers. Benchmarks are not tests: they
 * print numbers, and fail only when they cannot run.
 */

export interface Stat {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function stat(samples: number[]): Stat {
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], samples };
}

/** Runs `fn` `rounds` times (at least 3) and returns the statistics of its results. */
export async function rounds(n: number, fn: (round: number) => Promise<number>): Promise<Stat> {
  const out: number[] = [];
  for (let i = 0; i < Math.max(3, n); i++) out.push(await fn(i));
  return stat(out);
}

export interface Row {
  figure: string;
  ours: string;
  reference: string;
  ratio: string;
  target: string;
  met?: boolean;
}

export function fmtStat(s: Stat, unit: string, digits = 1): string {
  return `${s.median.toFixed(digits)} ${unit} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

export function ratio(ours: Stat, ref: Stat, digits = 2): string {
  return `${(ours.median / ref.median).toFixed(digits)}×`;
}

export function table(rows: Row[]): string {
  const head = ["figure", "ours", "reference", "ratio", "target", "met"];
  const body = rows.map((
    r,
  ) => [
    r.figure,
    r.ours,
    r.reference,
    r.ratio,
    r.target,
    r.met === undefined ? "" : r.met ? "yes" : "no",
  ]);
  const lines = [head, head.map(() => "---"), ...body].map((cols) => `| ${cols.join(" | ")} |`);
  return lines.join("\n");
}

export async function have(cmd: string): Promise<boolean> {
  const r = await new Deno.Command("sh", {
    args: ["-c", `command -v ${cmd}`],
    stdout: "null",
    stderr: "null",
  }).output();
  return r.code === 0;
}

export async function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000),
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** Starts a background process; `stop()` kills it and waits. */
export function spawn(
  cmd: string,
  args: string[],
): { child: Deno.ChildProcess; stop(): Promise<void> } {
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" })
    .spawn();
  return {
    child,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch (err) {
        if (!(err instanceof TypeError)) throw err;
      }
      await child.output().catch(() => {});
    },
  };
}

export function freePort(): number {
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return (l.addr as Deno.NetAddr).port;
}

export async function waitPort(
  port: number,
  hostname = "127.0.0.1",
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      const c = await Deno.connect({ hostname, port });
      c.close();
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`port ${hostname}:${port} did not open: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
