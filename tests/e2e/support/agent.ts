/**
 * The shipped agent (the bundle of main.ts) inside a node's namespace, with the narrowed
 * permission set of `scripts/permissions.ts`, a generated config and collected JSON logs.
 *
 * ```ts
 * const bundle = bundleOnce();                       // once per test file, lazily built
 * const agent = await startAgent(topo, "a1", { bundle: await bundle() });
 * await agent.ready();                                // "agent ready" logged
 * (await agent.admin("/healthz")).status === 200;     // curl inside the namespace
 * ```
 */

import { stringify } from "yaml";
import { agentFlags } from "../../../scripts/permissions.ts";
import { waitFor } from "../../support/wait.ts";
import type { Topology } from "../topology.ts";
import { curl, type CurlResult } from "./client.ts";
import { ROOT } from "./deno_run.ts";
import type { NsProcess } from "./proc.ts";
import { tempDir } from "./tmp.ts";

// deno-lint-ignore no-explicit-any
export type Obj = Record<string, any>;

/** Admin address inside every node namespace (each has its own loopback). */
export const ADMIN_ADDRESS = "127.0.0.1:10551";

/**
 * Returns a function that builds `main.ts` into a private temp folder on its first call
 * (`scripts/bundle.ts`, as `deno task bundle` does) and the bundle's path after.
 * A private copy keeps parallel test files from racing on `dist/`. Removed at process exit.
 */
export function bundleOnce(): () => Promise<string> {
  let built: Promise<string> | undefined;
  return () =>
    built ??= (async () => {
      const dir = await Deno.makeTempDir({ prefix: `em-${Deno.pid}-bundle-` });
      globalThis.addEventListener("unload", () => {
        try {
          Deno.removeSync(dir, { recursive: true });
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
      });
      const out = `${dir}/edgemesh.js`;
      // scripts/bundle.ts, as `deno task bundle`: it also embeds the batched DNS worker,
      // which a plain `deno bundle` leaves as a file next to the bundle.
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "scripts/bundle.ts", out],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (r.code !== 0) {
        throw new Error(
          `scripts/bundle.ts failed (${r.code}): ${new TextDecoder().decode(r.stderr)}`,
        );
      }
      return out;
    })();
}

/** Every module off: the base that scenarios switch modules on from. */
export const MODULES_OFF = {
  edgeDNS: { enable: false },
  edgeProxy: { enable: false },
  edgeTunnel: { enable: false },
  edgeHealth: { enable: false },
  edgeGateway: { enable: false },
};

/** The config an agent on `node` starts from; `dir` is its private folder. */
export function baseAgentConfig(node: string, dir: string): Obj {
  return {
    nodeName: node,
    logLevel: "info",
    commonConfig: { stateDir: `${dir}/state`, adminAddress: ADMIN_ADDRESS },
    modules: structuredClone(MODULES_OFF),
  };
}

/** Merges `over` into `base`: objects recursively, everything else (arrays too) replaced. */
export function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlain(v) && isPlain(b) ? deepMerge(b, v) : v;
  }
  return out;
}

function isPlain(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface StartAgentOptions {
  /** Path of the bundle (from `bundleOnce()`). */
  bundle: string;
  /** Overrides merged into `baseAgentConfig`; a function gets the agent's folder. */
  config?: Obj | ((dir: string) => Obj);
  /** Files written into the agent's folder before start (name → content), e.g. a PSK. */
  files?: Record<string, string | Uint8Array>;
  /** More folders the agent may read (its own folder is always readable and writable). */
  extraRead?: string[];
  /** Extra command-line arguments after `agent --config FILE`. */
  args?: string[];
  env?: Record<string, string>;
}

/** A running agent inside a namespace. */
export class NsAgent implements AsyncDisposable {
  constructor(
    readonly topo: Topology,
    readonly node: string,
    readonly proc: NsProcess,
    readonly dir: string,
    readonly configPath: string,
    readonly config: Obj,
    readonly options: StartAgentOptions,
  ) {}

  /** JSON log lines so far (non-JSON stdout lines as `{raw}`). */
  logs(): Obj[] {
    return this.proc.stdout.map((l) => {
      try {
        return JSON.parse(l);
      } catch (err) {
        if (err instanceof SyntaxError) return { raw: l };
        throw err;
      }
    });
  }

  /** Waits for a log line matching `match`; fails early if the agent exits. */
  waitLog(match: (l: Obj) => boolean, what: string, timeoutMs = 15_000): Promise<Obj> {
    return waitFor(() => {
      const hit = this.logs().find(match);
      if (hit) return hit;
      if (!this.proc.running) throw new Error(`agent ${this.node} exited before: ${what}`);
      return undefined;
    }, { what: `agent ${this.node}: ${what}`, timeoutMs, intervalMs: 20 });
  }

  /** Waits for "agent ready"; returns the admin address it logged. */
  async ready(timeoutMs = 15_000): Promise<string> {
    const l = await this.waitLog((l) => l.msg === "agent ready", "agent ready", timeoutMs);
    return String(l.admin);
  }

  /** `curl http://<admin><path>` inside the node. */
  admin(path: string, opts: { maxTimeS?: number; args?: string[] } = {}): Promise<CurlResult> {
    return curl(this.topo, this.node, `http://${ADMIN_ADDRESS}${path}`, opts);
  }

  /** GET /api/v1/status, parsed. */
  async status(): Promise<Obj> {
    const r = await this.admin("/api/v1/status");
    if (r.status !== 200) throw new Error(`status of ${this.node}: HTTP ${r.status} ${r.stderr}`);
    return JSON.parse(r.body);
  }

  /** Rewrites the config file (hot reload) with more overrides. */
  async reconfigure(over: Obj): Promise<void> {
    Object.assign(this.config, deepMerge(this.config, over));
    await Deno.writeTextFile(this.configPath, stringify(this.config));
  }

  /** Stops the agent (SIGTERM, SIGKILL after 6 s) and returns its exit code. */
  stop(sig: Deno.Signal = "SIGTERM"): Promise<number> {
    return this.proc.kill(sig, 6000);
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the agent. */
  freeze(on: boolean): void {
    this.proc.signal(on ? "SIGSTOP" : "SIGCONT");
  }

  /** Starts the same agent again (same folder, config and state) after a stop. */
  restart(): Promise<NsAgent> {
    if (this.proc.running) throw new Error(`agent ${this.node} still runs`);
    return launch(this.topo, this.node, this.dir, this.configPath, this.config, this.options);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Starts the bundle inside host `node`; resolves once spawned (call `ready()` to wait). */
export async function startAgent(
  topo: Topology,
  node: string,
  opts: StartAgentOptions,
): Promise<NsAgent> {
  const dir = await tempDir(topo, `agent-${node}`);
  for (const [name, content] of Object.entries(opts.files ?? {})) {
    if (typeof content === "string") await Deno.writeTextFile(`${dir}/${name}`, content);
    else await Deno.writeFile(`${dir}/${name}`, content);
  }
  const over = typeof opts.config === "function" ? opts.config(dir) : opts.config ?? {};
  const config = deepMerge(baseAgentConfig(node, dir), over);
  const configPath = `${dir}/edgemesh.yaml`;
  await Deno.writeTextFile(configPath, stringify(config));
  return launch(topo, node, dir, configPath, config, opts);
}

function launch(
  topo: Topology,
  node: string,
  dir: string,
  configPath: string,
  config: Obj,
  opts: StartAgentOptions,
): Promise<NsAgent> {
  const flags = agentFlags({ extraRead: [dir, ...(opts.extraRead ?? [])], extraWrite: [dir] });
  const proc = topo.spawn(node, Deno.execPath(), [
    "run",
    "--no-config",
    "--no-remote",
    ...flags,
    opts.bundle,
    "agent",
    "--config",
    configPath,
    ...(opts.args ?? []),
  ], { cwd: dir, env: opts.env, label: `${node}: agent` });
  return Promise.resolve(new NsAgent(topo, node, proc, dir, configPath, config, opts));
}
