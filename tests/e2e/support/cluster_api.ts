/**
 * "The same cluster" for every node: what each node's agent finds on `127.0.0.1:10550`.
 *
 * - `per-node` (default): one metaserver in each node; `apply`/`delete` go to all running
 *   ones, and a restarted one starts from the current objects. Writes an agent makes (node
 *   annotations) land only in its own node's server: read them with `get(…, { from })`.
 * - `cloud` (needs a topology built with `cloud: true`): one metaserver in the "cloud" host and
 *   in each node a plain TCP forwarder `127.0.0.1:10550 → cloud:10550`, like edgecore's
 *   metaserver proxying to the cloud. Cutting a NAT's WAN link cuts its LAN off the cloud,
 *   and every agent's writes meet in one place.
 *
 * `stopFor(node)`/`startFor(node)` take a node's API away and give it back (LAN autonomy).
 */

import type { Topology } from "../topology.ts";
import type { MetaServerRef, NsMetaServer } from "./metaserver.ts";
import { startMetaServer } from "./metaserver.ts";
import type { NsProcess } from "./proc.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

export type ClusterApiMode = "per-node" | "cloud";

export const API_PORT = 10550;

export interface ClusterApiOptions {
  /** Nodes that get an API (default: every node and relay). */
  nodes?: string[];
  objects?: Obj[];
  mode?: ClusterApiMode;
}

function keyOf(o: Obj): string {
  return `${o.apiVersion}/${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
}

export class ClusterApi {
  readonly #objects = new Map<string, Obj>();
  /** per-node: node → its server. cloud: "cloud" → the server. */
  readonly #servers = new Map<string, NsMetaServer>();
  /** cloud: node → its forwarder. */
  readonly #forwarders = new Map<string, NsProcess>();

  private constructor(
    readonly topo: Topology,
    readonly mode: ClusterApiMode,
    readonly nodes: string[],
  ) {}

  static async start(topo: Topology, opts: ClusterApiOptions = {}): Promise<ClusterApi> {
    const nodes = opts.nodes ?? [...topo.names("relay"), ...topo.names("node")];
    const api = new ClusterApi(topo, opts.mode ?? "per-node", nodes);
    for (const o of opts.objects ?? []) api.#objects.set(keyOf(o), structuredClone(o));
    if (api.mode === "cloud") {
      const server = await startMetaServer(topo, "cloud", { objects: [...api.#objects.values()] });
      api.#servers.set("cloud", server);
      await topo.delay("cloud", {
        listen: `${topo.ip("cloud")}:${API_PORT}`,
        target: `127.0.0.1:${API_PORT}`,
        delayMs: 0,
      });
    }
    await Promise.all(nodes.map((n) => api.startFor(n)));
    return api;
  }

  /** Creates or replaces an object everywhere. */
  async apply(obj: Obj): Promise<void> {
    this.#objects.set(keyOf(obj), structuredClone(obj));
    await Promise.all(
      [...this.#servers.values()].filter((s) => s.proc.running).map((s) => s.apply(obj)),
    );
  }

  /** Deletes an object everywhere. */
  async delete(ref: MetaServerRef): Promise<void> {
    this.#objects.delete(keyOf(ref));
    await Promise.all(
      [...this.#servers.values()].filter((s) => s.proc.running).map((s) => s.delete(ref)),
    );
  }

  /** Reads an object as the cloud (or, per node, node `from`) stores it now. */
  get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    opts: { from?: string } = {},
  ): Promise<Obj | null> {
    const server = this.#servers.get(this.mode === "cloud" ? "cloud" : opts.from ?? this.nodes[0]);
    if (!server) throw new Error(`No running API for ${opts.from}`);
    return server.get(apiVersion, kind, namespace, name);
  }

  /** The metaserver behind a node (the cloud's in cloud mode). */
  server(node?: string): NsMetaServer | undefined {
    return this.#servers.get(this.mode === "cloud" ? "cloud" : node ?? this.nodes[0]);
  }

  /** Takes the API away from a node: its agent sees connection refused on 10550. */
  async stopFor(node: string): Promise<void> {
    if (this.mode === "cloud") {
      await this.#forwarders.get(node)?.kill();
      this.#forwarders.delete(node);
    } else {
      await this.#servers.get(node)?.stop();
      this.#servers.delete(node);
    }
  }

  /** Gives a node its API back (per-node: serving the current objects). */
  async startFor(node: string): Promise<void> {
    if (this.mode === "cloud") {
      if (this.#forwarders.has(node)) return;
      const fwd = await this.topo.delay(node, {
        listen: `127.0.0.1:${API_PORT}`,
        target: `${this.topo.ip("cloud")}:${API_PORT}`,
        delayMs: 0,
      });
      this.#forwarders.set(node, fwd.proc);
    } else {
      if (this.#servers.has(node)) return;
      this.#servers.set(
        node,
        await startMetaServer(this.topo, node, { objects: [...this.#objects.values()] }),
      );
    }
  }
}
