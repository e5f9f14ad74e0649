/**
 * `deno task bench`: runs every benchmark under `bench/` that exists (proxy, health, DNS,
 * tunnel), each in its own process and bounded in time, prints their tables and writes
 * `docs/BENCHMARKS.md` with the date, the machine, the exact commands and the tables. Notes
 * written by hand below the marker line of that file are kept.
 *   deno run --unstable-net -A bench/run.ts [--only proxy,dns] [--no-write]
 * Benchmarks are not tests: a figure that misses its target fails nothing; a benchmark that
 * cannot run (missing tool, crash, time limit) is reported as such and makes the exit code 1.
 */

const ROOT = new URL("../", import.meta.url).pathname;
const DOC = `${ROOT}docs/BENCHMARKS.md`;
const NOTES_MARKER = "<!-- notes below are written by hand and kept by bench/run.ts -->";
/** The whole run must stay under 10 minutes; these limits add up to 9. */
const BENCHES: { name: string; file: string; args: string[]; limitS: number }[] = [
  { name: "proxy", file: "bench/proxy.ts", args: ["--rounds", "3", "--seconds", "3"], limitS: 220 },
  { name: "dns", file: "bench/dns.ts", args: [], limitS: 130 },
  // 100,000 short streams take ~85 s of its ~135 s.
  { name: "tunnel", file: "bench/tunnel.ts", args: [], limitS: 160 },
  { name: "health", file: "bench/health.ts", args: [], limitS: 30 },
];

interface Outcome {
  name: string;
  command: string;
  ok: boolean;
  seconds: number;
  output: string;
  problem?: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function sh(cmd: string): Promise<string> {
  const r = await new Deno.Command("sh", { args: ["-c", cmd], stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(r.stdout).trim();
}

async function machine(): Promise<Record<string, string>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  return {
    nproc: await sh("nproc"),
    kernel: await sh("uname -srm"),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memory: `${
      Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(await sh("cat /proc/meminfo"))?.[1]) / 1024)
    } MiB`,
    deno: Deno.version.deno,
    "load average at start": (await sh("cat /proc/loadavg")).split(" ").slice(0, 3).join(" "),
    tools: (await Promise.all(
      [
        ["iperf3", "iperf3 --version | head -1"],
        ["wrk", "wrk -v 2>&1 | head -1"],
        ["haproxy", "haproxy -v | head -1"],
        ["nginx", "nginx -v 2>&1"],
        ["dnsperf", "dnsperf -h 2>&1 | grep -i version | head -1"],
        ["dnsmasq", "dnsmasq --version | head -1"],
      ].map(async ([name, cmd]) => {
        const v = await sh(`command -v ${name} >/dev/null && (${cmd})`);
        if (!v) return `${name}: not installed`;
        const line = v.replace(/\s+/g, " ").replace(/ Copyright.*$/i, "").replace(
          / - https?:.*$/,
          "",
        );
        return line.toLowerCase().includes(name) ? line : `${name} ${line}`;
      }),
    )).join("; "),
  };
}

/** Runs one benchmark, echoing its output as it comes. */
async function runOne(b: (typeof BENCHES)[number]): Promise<Outcome> {
  // --expose-gc: memory readings after a full GC (bench/tunnel.ts).
  const args = ["run", "--unstable-net", "-A", "--v8-flags=--expose-gc", b.file, ...b.args];
  const command = `deno ${args.join(" ")}`;
  console.log(`\n## ${b.name}: ${command} (limit ${b.limitS} s)`);
  const t0 = performance.now();
  // Its own process group (setsid), so that on the time limit the benchmark and every helper
  // it started (iperf3, nginx, haproxy, agents) are stopped together.
  const child = new Deno.Command("setsid", {
    args: [Deno.execPath(), ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killGroup = (signal: string) =>
    new Deno.Command("kill", { args: [`-${signal}`, "--", `-${child.pid}`], stderr: "null" })
      .output();
  let hard: ReturnType<typeof setTimeout> | undefined;
  const timer = setTimeout(() => {
    killGroup("TERM");
    hard = setTimeout(() => killGroup("KILL"), 5000);
  }, b.limitS * 1000);
  const collect = async (stream: ReadableStream<Uint8Array>, echo: boolean) => {
    let text = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (echo) await Deno.stdout.write(new TextEncoder().encode(chunk));
    }
    return text;
  };
  const [output, errors, status] = await Promise.all([
    collect(child.stdout, true),
    collect(child.stderr, false),
    child.status,
  ]);
  clearTimeout(timer);
  clearTimeout(hard);
  const seconds = (performance.now() - t0) / 1000;
  const timedOut = seconds >= b.limitS;
  const ok = status.success && !timedOut;
  const tail = errors.trim().split("\n").slice(-8).join("\n");
  const problem = ok
    ? undefined
    : timedOut
    ? `stopped after the ${b.limitS} s limit`
    : `exit code ${status.code}${tail ? `: ${tail}` : ""}`;
  if (problem) console.log(`${b.name} did not complete: ${problem}`);
  return { name: b.name, command, ok, seconds, output: output.trim(), problem };
}

function section(o: Outcome): string {
  const lines = [`## ${o.name}`, "", "```sh", o.command, "```", ""];
  lines.push(`Took ${o.seconds.toFixed(0)} s.${o.ok ? "" : ` **Did not complete**: ${o.problem}`}`);
  lines.push("");
  if (o.output) {
    // Markdown tables pass through; anything else is kept verbatim in a code block.
    const isTable = o.output.split("\n").some((l) => l.startsWith("| "));
    lines.push(isTable ? o.output : ["```text", o.output, "```"].join("\n"));
    lines.push("");
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const only = Deno.args.includes("--only")
    ? Deno.args[Deno.args.indexOf("--only") + 1].split(",")
    : undefined;
  const write = !Deno.args.includes("--no-write");
  const started = new Date();
  const info = await machine();
  console.log(
    `# edgemesh benchmarks, ${started.toISOString()}\n` +
      Object.entries(info).map(([k, v]) => `${k}: ${v}`).join("\n"),
  );
  const outcomes: Outcome[] = [];
  const skipped: string[] = [];
  for (const b of BENCHES) {
    if (only && !only.includes(b.name)) continue;
    if (!(await exists(`${ROOT}${b.file}`))) {
      skipped.push(`${b.name} (${b.file} does not exist yet)`);
      continue;
    }
    outcomes.push(await runOne(b));
  }
  const total = (Date.now() - started.getTime()) / 1000;
  console.log(`\nall benchmarks: ${total.toFixed(0)} s`);
  if (write) {
    const old = await Deno.readTextFile(DOC).catch(() => "");
    const notes = old.includes(NOTES_MARKER) ? old.slice(old.indexOf(NOTES_MARKER)) : NOTES_MARKER;
    const doc = [
      "# Benchmarks",
      "",
      "Generated by `deno task bench` (`bench/run.ts`); do not edit above the marker line.",
      "Every figure is a ratio against a reference measured in the same run (haproxy, nginx",
      "direct, dnsmasq, …), the median of at least 3 rounds with (min–max). The machine is",
      "shared with other work, so absolute numbers are noisy; the ratios are what to compare.",
      "",
      `- date: ${started.toISOString()}`,
      ...Object.entries(info).map(([k, v]) => `- ${k}: ${v}`),
      `- whole run: ${total.toFixed(0)} s (\`deno task bench\`)` +
      (only ? `, only ${only.join(", ")}` : ""),
      ...(skipped.length ? [`- not run: ${skipped.join("; ")}`] : []),
      "",
      ...outcomes.map(section),
      notes,
      "",
    ].join("\n");
    await Deno.writeTextFile(DOC, doc);
    console.log(`wrote ${DOC}`);
  }
  if (outcomes.some((o) => !o.ok)) Deno.exit(1);
}
