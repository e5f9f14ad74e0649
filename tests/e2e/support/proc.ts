/**
 * Processes inside network namespaces: one-shot commands (`execIn`) and long-running handles
 * (`spawnIn`) that collect their output line by line, can be waited on and are always killed.
 * `ns === null` means the root namespace, used only for `ip netns …` bookkeeping.
 */

import { waitFor } from "../../support/wait.ts";

export interface ExecOptions {
  /** Kill the command after this long (default 10 000 ms). */
  timeoutMs?: number;
  /** Throw `CommandFailed` on a non-zero exit (default true). */
  check?: boolean;
  /** Text written to the command's stdin. */
  stdin?: string;
  cwd?: string;
  env?: Record<string, string>;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A command exited non-zero; carries everything needed to understand why. */
export class CommandFailed extends Error {
  override name = "CommandFailed";
  constructor(
    readonly ns: string | null,
    readonly argv: string[],
    readonly result: ExecResult,
  ) {
    super(
      `${ns ? `[${ns}] ` : ""}${argv.join(" ")} exited ${result.code}: ` +
        (result.stderr.trim() || result.stdout.trim() || "(no output)"),
    );
  }
}

/** The argv that runs `cmd args` inside `ns` (or as is for the root namespace). */
export function argvIn(ns: string | null, cmd: string, args: string[]): string[] {
  return ns === null ? [cmd, ...args] : ["ip", "netns", "exec", ns, cmd, ...args];
}

const decoder = new TextDecoder();

/** Runs `cmd args` inside `ns` and returns its exit code and output. */
export async function execIn(
  ns: string | null,
  cmd: string,
  args: string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const argv = argvIn(ns, cmd, args);
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: opts.cwd,
    env: opts.env,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const result = {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  if ((opts.check ?? true) && out.code !== 0) throw new CommandFailed(ns, argv, result);
  return result;
}

/** Synchronous variant for exit handlers (never throws). */
export function execInSync(ns: string | null, cmd: string, args: string[]): ExecResult {
  const argv = argvIn(ns, cmd, args);
  try {
    const out = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .outputSync();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } catch (err) {
    return { code: -1, stdout: "", stderr: String(err) };
  }
}

export interface SpawnOptions {
  /** A name for logs and failure dumps (default: the command). */
  label?: string;
  /** Keep stdin open for `write()` (default false). */
  stdin?: boolean;
  cwd?: string;
  env?: Record<string, string>;
}

export interface OutputLine {
  stream: "stdout" | "stderr";
  text: string;
}

/** A long-running process in a namespace. Dispose (or `kill()`) always reaps it. */
export class NsProcess implements AsyncDisposable {
  readonly label: string;
  readonly ns: string;
  readonly pid: number;
  /** Every output line, in arrival order per stream. */
  readonly lines: OutputLine[] = [];
  /** Resolves with the exit code once the process exited and its output is drained. */
  readonly exited: Promise<number>;
  readonly #child: Deno.ChildProcess;
  readonly #listeners = new Set<(l: OutputLine) => void>();
  #stdin?: WritableStreamDefaultWriter<Uint8Array>;
  #code: number | undefined;

  constructor(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}) {
    this.ns = ns;
    this.label = opts.label ?? cmd;
    const argv = argvIn(ns, cmd, args);
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: opts.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      cwd: opts.cwd,
      env: opts.env,
    }).spawn();
    this.#child = child;
    this.pid = child.pid;
    if (opts.stdin) this.#stdin = child.stdin.getWriter();
    const pumps = Promise.all([
      this.#pump(child.stdout, "stdout"),
      this.#pump(child.stderr, "stderr"),
    ]);
    this.exited = (async () => {
      const status = await child.status;
      await pumps;
      await this.#closeStdin();
      this.#code = status.code;
      return status.code;
    })();
  }

  /** True while the process has not exited. */
  get running(): boolean {
    return this.#code === undefined;
  }

  /** The stdout lines only. */
  get stdout(): string[] {
    return this.lines.filter((l) => l.stream === "stdout").map((l) => l.text);
  }

  /** Calls `fn` for each new output line (returns an unsubscribe function). */
  onLine(fn: (l: OutputLine) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Waits for an output line matching `pred`; fails early when the process exits first. */
  waitLine(
    pred: (text: string, l: OutputLine) => boolean,
    what: string,
    timeoutMs = 10_000,
  ): Promise<string> {
    return waitFor(() => {
      const hit = this.lines.find((l) => pred(l.text, l));
      if (hit) return hit.text;
      if (!this.running) {
        throw new Error(`${this.label} exited (${this.#code}) before ${what}\n${this.dump()}`);
      }
      return undefined;
    }, { what: `${this.label}: ${what}`, timeoutMs, intervalMs: 20 });
  }

  /** Writes text to stdin (spawned with `stdin: true`). */
  async write(text: string): Promise<void> {
    if (!this.#stdin) throw new Error(`${this.label} was spawned without stdin`);
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  /** Sends a signal without waiting (SIGSTOP/SIGCONT to freeze and thaw). */
  signal(sig: Deno.Signal): void {
    if (!this.running) return;
    try {
      this.#child.kill(sig);
    } catch (err) {
      // Exited between the check and the kill.
      if (!(err instanceof TypeError)) throw err;
    }
  }

  /** Sends `sig` (default SIGTERM), escalates to SIGKILL after `graceMs`, resolves with the code. */
  async kill(sig: Deno.Signal = "SIGTERM", graceMs = 3000): Promise<number> {
    if (!this.running) return await this.exited;
    this.signal("SIGCONT");
    this.signal(sig);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<"late">((resolve) =>
      timer = setTimeout(() => resolve("late"), graceMs)
    );
    const first = await Promise.race([this.exited, grace]);
    clearTimeout(timer);
    if (first === "late") this.signal("SIGKILL");
    return await this.exited;
  }

  /** Output with a header, for failure reports. */
  dump(): string {
    const body = this.lines.map((l) => (l.stream === "stderr" ? "! " : "  ") + l.text).join("\n");
    return `----- ${this.label} (ns ${this.ns}, pid ${this.pid}, ${
      this.running ? "running" : `exit ${this.#code}`
    }) -----\n${body}`;
  }

  /** Kills without waiting, for synchronous exit handlers. */
  killNow(): void {
    this.signal("SIGKILL");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }

  async #closeStdin(): Promise<void> {
    const w = this.#stdin;
    this.#stdin = undefined;
    if (!w) return;
    try {
      await w.close();
    } catch (err) {
      // The pipe broke because the process exited: nothing left to close.
      if (!(err instanceof Deno.errors.BrokenPipe || err instanceof TypeError)) throw err;
    }
  }

  async #pump(stream: ReadableStream<Uint8Array>, name: OutputLine["stream"]): Promise<void> {
    let buf = "";
    const emit = (text: string) => {
      const line = { stream: name, text };
      this.lines.push(line);
      for (const fn of this.#listeners) fn(line);
    };
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) !== -1) {
        emit(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
    if (buf) emit(buf);
  }
}
