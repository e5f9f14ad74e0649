/**
 * Runs an agent as a child process (main.ts, or the bundle) with a config written to a temp
 * dir, collects its JSON log lines, and waits on them.
 */

import { stringify } from "yaml";
import { waitFor } from "./wait.ts";

export interface AgentProcess {
  child: Deno.ChildProcess;
  dir: string;
  configPath: string;
  logs: Record<string, unknown>[];
  stderr: string[];
  /** Resolves with the exit code. */
  exited: Promise<number>;
  /** Waits for a log line matching. */
  waitLog(
    match: (l: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  adminUrl(): Promise<string>;
  stop(signal?: Deno.Signal): Promise<number>;
  dumpLogs(): string;
}

export interface StartAgentOptions {
  config: Record<string, unknown>;
  args?: string[];
  /** Run this script instead of main.ts (e.g. the bundle). */
  script?: string;
  /** Deno permission flags (default -A). */
  permissions?: string[];
  env?: Record<string, string>;
  cwd?: string;
}

const ROOT = new URL("../../", import.meta.url).pathname;

export async function startAgent(opts: StartAgentOptions): Promise<AgentProcess> {
  const dir = await Deno.makeTempDir({ prefix: "edgemesh-agent-" });
  const configPath = `${dir}/edgemesh.yaml`;
  const config = structuredClone(opts.config);
  const common = (config.commonConfig ??= {}) as Record<string, unknown>;
  common.stateDir ??= `${dir}/state`;
  common.adminAddress ??= "127.0.0.1:0";
  await Deno.writeTextFile(configPath, stringify(config));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(opts.permissions ?? ["-A", "--unstable-net"]),
      opts.script ?? `${ROOT}main.ts`,
      "agent",
      "--config",
      configPath,
      ...(opts.args ?? []),
    ],
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) => {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) !== -1) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
    if (buf) onLine(buf);
  };
  const pumps = Promise.all([
    pump(child.stdout, (l) => {
      try {
        logs.push(JSON.parse(l));
      } catch {
        logs.push({ raw: l });
      }
    }),
    pump(child.stderr, (l) => stderr.push(l)),
  ]);
  const exited = (async () => {
    const s = await child.status;
    await pumps;
    return s.code;
  })();
  let done = false;
  exited.then(() => done = true);
  const proc: AgentProcess = {
    child,
    dir,
    configPath,
    logs,
    stderr,
    exited,
    waitLog: (match, what, timeoutMs = 15000) =>
      waitFor(() => {
        const hit = logs.find(match);
        if (!hit && done) throw new Error(`agent exited before: ${what}\n${proc.dumpLogs()}`);
        return hit;
      }, { timeoutMs, what }),
    adminUrl: async () => {
      const l = await proc.waitLog((l) => l.msg === "agent ready", "agent ready");
      return `http://${l.admin}`;
    },
    stop: async (signal: Deno.Signal = "SIGTERM") => {
      if (!done) {
        try {
          child.kill(signal);
        } catch (err) {
          if (!(err instanceof TypeError)) throw err;
        }
      }
      const code = await exited;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      return code;
    },
    dumpLogs: () => [...logs.map((l) => JSON.stringify(l)), ...stderr].join("\n"),
  };
  return proc;
}

/** Runs `main.ts` (or a script) with arguments and returns code and output. */
export async function runCli(
  args: string[],
  opts: { script?: string; cwd?: string; permissions?: string[] } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(opts.permissions ?? ["-A", "--unstable-net"]),
      opts.script ?? `${ROOT}main.ts`,
      ...args,
    ],
    cwd: opts.cwd ?? ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

export const PROJECT_ROOT = ROOT;
