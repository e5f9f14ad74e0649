/**
 * A test metaserver inside a node's namespace (`127.0.0.1:10550` there, where the agent
 * expects it), driven from the test through the runner's stdin.
 *
 * ```ts
 * const ms = await startMetaServer(topo, "a1", { objects: clusterObjects(topo) });
 * await ms.apply(configMap);            // every agent watching sees the change
 * await ms.stop();                      // LAN autonomy: the agent runs on its snapshot
 * ```
 */

import { stringify } from "yaml";
import type { Topology } from "../topology.ts";
import { denoIn, readyLine } from "./deno_run.ts";
import type { NsProcess } from "./proc.ts";
import { removeDir, tempDir } from "./tmp.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

export interface MetaServerRef {
  apiVersion: string;
  kind: string;
  metadata: { namespace?: string; name: string };
}

export class MetaServerControlError extends Error {
  override name = "MetaServerControlError";
}

/** Handle on a metaserver runner process. */
export class NsMetaServer implements AsyncDisposable {
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  #nextId = 1;

  constructor(
    readonly proc: NsProcess,
    readonly node: string,
    readonly url: string,
    readonly dir: string,
  ) {
    proc.onLine((l) => {
      if (l.stream !== "stdout" || !l.text.startsWith("{")) return;
      let msg;
      try {
        msg = JSON.parse(l.text);
      } catch (err) {
        if (err instanceof SyntaxError) return;
        throw err;
      }
      const p = typeof msg.id === "number" ? this.#pending.get(msg.id) : undefined;
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new MetaServerControlError(`metaserver on ${node}: ${msg.error}`));
    });
    proc.exited.then((code) => {
      for (const p of this.#pending.values()) {
        p.reject(new MetaServerControlError(`metaserver on ${node} exited (${code})`));
      }
      this.#pending.clear();
    });
  }

  /** Sends one control request and waits for its answer. */
  async call(op: string, params: Obj = {}): Promise<unknown> {
    const id = this.#nextId++;
    const answer = new Promise<unknown>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject })
    );
    await this.proc.write(JSON.stringify({ id, op, ...params }) + "\n");
    return await answer;
  }

  apply<T extends Obj>(object: T): Promise<T> {
    return this.call("apply", { object }) as Promise<T>;
  }

  delete(ref: MetaServerRef): Promise<boolean> {
    return this.call("delete", { ref }) as Promise<boolean>;
  }

  get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<Obj | null> {
    return this.call("get", { apiVersion, kind, namespace, name }) as Promise<Obj | null>;
  }

  stall(on: boolean): Promise<unknown> {
    return this.call("stall", { on });
  }

  dropWatches(): Promise<number> {
    return this.call("dropWatches") as Promise<number>;
  }

  state(): Promise<{ resourceVersion: number; watchCount: number }> {
    return this.call("state") as Promise<{ resourceVersion: number; watchCount: number }>;
  }

  /** Stops the server (SIGTERM) and removes its folder. */
  async stop(): Promise<void> {
    await this.proc.kill();
    await removeDir(this.dir);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Starts a metaserver inside host `name` serving `objects`; resolves once it listens. */
export async function startMetaServer(
  topo: Topology,
  name: string,
  opts: { objects?: Obj[]; port?: number } = {},
): Promise<NsMetaServer> {
  const dir = await tempDir(topo, `meta-${name}`);
  const file = `${dir}/cluster.yaml`;
  await Deno.writeTextFile(file, (opts.objects ?? []).map((o) => stringify(o)).join("---\n"));
  const proc = denoIn(topo, name, new URL("./metaserver_main.ts", import.meta.url), [
    "--cluster",
    file,
    "--port",
    String(opts.port ?? 10550),
  ], {
    allow: ["--allow-net", `--allow-read=${dir}`, "--allow-env=LOG_TOKENS,LOG_STREAM"],
    label: `${name}: metaserver`,
    stdin: true,
  });
  const ready = await readyLine<{ url: string }>(proc);
  return new NsMetaServer(proc, name, ready.url, dir);
}
