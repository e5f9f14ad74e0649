/**
 * A faithful-enough Kubernetes API server for tests: list/watch with resource versions,
 * bookmarks, `410 Gone` after compaction, selectors, GET/POST/PUT/PATCH/DELETE, discovery
 * documents (so `kubectl --server` works) and a control API to change objects and inject
 * faults (dropped watches, stalls, missing CRD groups).
 *
 * ```ts
 * await using ms = await TestMetaServer.start();
 * ms.apply({ apiVersion: "v1", kind: "Service", metadata: { namespace: "ns", name: "a" } });
 * fetch(`${ms.url}/api/v1/services`);
 * ```
 */

import { handleApi, json } from "./metaserver_http.ts";
import { statusObject } from "./metaserver_resources.ts";
import { keyOf, MetaState, type Obj } from "./metaserver_state.ts";

export type { Obj as MetaObject } from "./metaserver_state.ts";

export interface MetaServerOptions {
  /** How many past events are kept for `watch` from an older resourceVersion (default 1000). */
  historyLimit?: number;
  /** Interval of BOOKMARK events on watches that allow them (default 1000 ms). */
  bookmarkIntervalMs?: number;
  /**
   * How a watch from an expired resourceVersion fails: `"event"` (as kube-apiserver: HTTP 200
   * and one ERROR event holding a 410 Status) or `"status"` (HTTP 410 with a Status body).
   */
  goneAs?: "event" | "status";
  /** API groups answered with 404 (a CRD that is not installed), e.g. "networking.istio.io". */
  missingGroups?: string[];
  /** Objects present from the start. */
  objects?: Obj[];
  /**
   * First resourceVersion (default 1). A real API server's versions only grow, across restarts
   * too: a test restarting a metaserver should start the new one above the old one's version.
   */
  initialResourceVersion?: number;
  /** Port to listen on (default 0: any free port); for "restart on the same address" tests. */
  port?: number;
}

export type RequestVerb = "list" | "watch" | "get" | "patch" | "create" | "update" | "delete";

export class TestMetaServer implements AsyncDisposable {
  readonly #state: MetaState;
  readonly #missingGroups: Set<string>;
  readonly #forbidden = new Set<string>();
  readonly #stallWaiters = new Set<() => void>();
  readonly #requests = new Map<string, number>();
  readonly #options: MetaServerOptions;
  #stalled = false;
  #stopping = false;
  #lastAuthorization?: string;
  #server?: Deno.HttpServer<Deno.NetAddr>;
  #url = "";

  private constructor(options: MetaServerOptions) {
    this.#options = options;
    this.#state = new MetaState(options.historyLimit ?? 1000, options.initialResourceVersion ?? 1);
    this.#missingGroups = new Set(options.missingGroups ?? []);
    for (const o of options.objects ?? []) this.apply(o);
  }

  /** Starts a server on 127.0.0.1 (port 0 unless `options.port`). */
  static start(options: MetaServerOptions = {}): Promise<TestMetaServer> {
    const ms = new TestMetaServer(options);
    return new Promise((resolve) => {
      ms.#server = Deno.serve({
        hostname: "127.0.0.1",
        port: options.port ?? 0,
        onListen: ({ port }) => {
          ms.#url = `http://127.0.0.1:${port}`;
          resolve(ms);
        },
      }, (req) => ms.#handle(req));
    });
  }

  /** `http://127.0.0.1:PORT` */
  get url(): string {
    return this.#url;
  }

  get port(): number {
    return Number(new URL(this.#url).port);
  }

  /** The current (highest) resourceVersion. */
  get resourceVersion(): number {
    return this.#state.resourceVersion;
  }

  /** The Authorization header of the latest request, if any (to check client credentials). */
  get lastAuthorization(): string | undefined {
    return this.#lastAuthorization;
  }

  /** Number of open watch streams. */
  get watchCount(): number {
    return this.#state.watchCount;
  }

  /** Requests seen for a verb and resource, e.g. `requestCount("list", "services")`. */
  requestCount(verb: RequestVerb, plural: string): number {
    return this.#requests.get(`${verb} ${plural}`) ?? 0;
  }

  // ---- control API -------------------------------------------------------------------------

  /** Creates or replaces an object (identified by apiVersion, kind, namespace, name). */
  apply<T extends Obj>(obj: T): T {
    const def = this.#state.defOf(obj);
    const type = this.#state.objects(def).has(keyOf(obj)) ? "MODIFIED" : "ADDED";
    return this.#state.commit(def, type, obj) as T;
  }

  /** Creates an object; throws when it exists. */
  add<T extends Obj>(obj: T): T {
    const def = this.#state.defOf(obj);
    if (this.#state.objects(def).has(keyOf(obj))) {
      throw new Error(`${def.kind} ${keyOf(obj)} already exists`);
    }
    return this.#state.commit(def, "ADDED", obj) as T;
  }

  /** Replaces an existing object; throws when it does not exist. */
  update<T extends Obj>(obj: T): T {
    const def = this.#state.defOf(obj);
    if (!this.#state.objects(def).has(keyOf(obj))) {
      throw new Error(`${def.kind} ${keyOf(obj)} does not exist`);
    }
    return this.#state.commit(def, "MODIFIED", obj) as T;
  }

  /** Deletes an object; returns false when it did not exist. */
  delete(
    ref: { apiVersion: string; kind: string; metadata: { namespace?: string; name: string } },
  ): boolean {
    const def = this.#state.defOf(ref as Obj);
    const old = this.#state.objects(def).get(keyOf(ref as Obj));
    if (!old) return false;
    this.#state.commit(def, "DELETED", old);
    return true;
  }

  /** A copy of the stored object, or undefined. */
  get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Obj | undefined {
    const def = this.#state.defOf({ apiVersion, kind, metadata: { name } });
    const o = this.#state.objects(def).get(namespace ? `${namespace}/${name}` : name);
    return o && structuredClone(o);
  }

  /** Makes an API group answer 404 (as a CRD that is not installed), or serves it again. */
  setGroupAvailable(group: string, available: boolean): void {
    if (available) this.#missingGroups.delete(group);
    else this.#missingGroups.add(group);
  }

  /** Makes every request on a resource (plural, e.g. "secrets") answer 403 Forbidden, or not. */
  setForbidden(plural: string, forbidden: boolean): void {
    if (forbidden) this.#forbidden.add(plural);
    else this.#forbidden.delete(plural);
  }

  /** Closes every open watch stream (clients see a clean end of stream). Returns how many. */
  dropWatches(): number {
    return this.#state.closeWatches();
  }

  /**
   * While on, new requests are accepted but never answered (open watches keep streaming);
   * turning it off lets the held requests proceed.
   */
  stall(on: boolean): void {
    this.#stalled = on;
    if (!on) this.#releaseStalled();
  }

  /** Drops all history: a watch from any older resourceVersion now gets `410 Gone`. */
  compactHistory(): void {
    this.#state.compact();
  }

  /** Closes watches, releases stalled requests and stops listening. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopping) return await this.#server?.finished;
    this.#stopping = true;
    this.dropWatches();
    this.#releaseStalled();
    await this.#server?.shutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #releaseStalled(): void {
    const waiters = [...this.#stallWaiters];
    this.#stallWaiters.clear();
    for (const wake of waiters) wake();
  }

  async #handle(req: Request): Promise<Response> {
    if (this.#stalled) {
      // Held until stall(false) or stop(); a client that gives up meanwhile is answered then.
      await new Promise<void>((resolve) => this.#stallWaiters.add(resolve));
      if (this.#stopping) return json(statusObject(503, "ServiceUnavailable", "stopping"), 503);
    }
    this.#lastAuthorization = req.headers.get("authorization") ?? this.#lastAuthorization;
    return await handleApi({
      state: this.#state,
      host: `127.0.0.1:${this.port}`,
      missingGroups: this.#missingGroups,
      forbidden: this.#forbidden,
      goneAs: this.#options.goneAs ?? "event",
      bookmarkIntervalMs: this.#options.bookmarkIntervalMs ?? 1000,
      stopping: () => this.#stopping,
      count: (verb, plural) => {
        const key = `${verb} ${plural}`;
        this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
      },
    }, req);
  }
}
