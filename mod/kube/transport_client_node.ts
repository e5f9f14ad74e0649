/**
 * The list/watch transport on `@kubernetes/client-node`: its `Watch` for watches and its
 * generated HTTP layer (`RequestContext` + undici fetch) for lists, with authentication and
 * TLS from a `KubeConfig` in kubeconfig mode.
 *
 * Importing the package root costs ~87 MB RSS under Deno 2.9 (it pulls every generated API
 * model); this file loads only `dist/watch.js` and `dist/gen/http/*` (~26 MB, mostly undici),
 * and `dist/config.js` (`KubeConfig`, ~85 MB with the generated client it drags in) only when
 * a kubeconfig file or an https master is used. The imports are dynamic, so merely importing
 * this module costs nothing.
 */

import type { KubeConfig } from "@kubernetes/client-node/dist/config.js";
import type { RequestContext } from "@kubernetes/client-node/dist/gen/http/http.js";
import { KubeApiError } from "./errors.ts";
import {
  collectionUrl,
  type KubeTransport,
  type ListResult,
  statusReason,
  type WatchEvent,
  type WatchOptions,
} from "./transport.ts";

/** What `Watch` and our list need from a KubeConfig. */
interface Auth {
  getCurrentCluster(): { server: string } | null;
  applySecurityAuthentication(ctx: RequestContext): Promise<void>;
}

export interface ClientNodeTarget {
  /** A plain server URL without credentials (the metaserver, or an http master). */
  server?: string;
  /** A kubeconfig file (its current context). */
  kubeConfigPath?: string;
  /** Overrides the kubeconfig's server, or alone: an https API server with system CAs. */
  master?: string;
}

export interface ClientNodeTransportOptions {
  /** A list request fails after this long (default 30 s). */
  requestTimeoutMs?: number;
  /** A watch with no bytes for this long is ended and re-opened (default 60 s). */
  watchIdleTimeoutMs?: number;
}

type WatchModule = typeof import("@kubernetes/client-node/dist/watch.js");
type HttpModule = typeof import("@kubernetes/client-node/dist/gen/http/http.js");

export class ClientNodeTransport implements KubeTransport {
  private constructor(
    readonly server: string,
    private readonly auth: Auth,
    private readonly watchMod: WatchModule,
    private readonly http: HttpModule,
    private readonly options: Required<ClientNodeTransportOptions>,
  ) {}

  /** Loads the needed parts of client-node and, for a kubeconfig, the credentials. */
  static async create(
    target: ClientNodeTarget,
    options: ClientNodeTransportOptions = {},
  ): Promise<ClientNodeTransport> {
    const [watchMod, http] = await Promise.all([
      import("@kubernetes/client-node/dist/watch.js"),
      import("@kubernetes/client-node/dist/gen/http/http.js"),
    ]);
    let auth: Auth;
    let server: string;
    const plain = target.server ??
      (!target.kubeConfigPath && target.master?.startsWith("http:") ? target.master : undefined);
    if (plain) {
      server = plain;
      auth = {
        getCurrentCluster: () => ({ server }),
        applySecurityAuthentication: () => Promise.resolve(),
      };
    } else {
      const { KubeConfig } = await import("@kubernetes/client-node/dist/config.js");
      const kc: KubeConfig = new KubeConfig();
      if (target.kubeConfigPath) {
        kc.loadFromFile(target.kubeConfigPath);
        if (target.master) overrideServer(kc, target.master);
      } else if (target.master) {
        kc.loadFromClusterAndUser({ name: "master", server: target.master, skipTLSVerify: false }, {
          name: "anonymous",
        });
      } else {
        throw new Error("a server, a kubeConfigPath or a master is required");
      }
      const cluster = kc.getCurrentCluster();
      if (!cluster) throw new Error(`kubeconfig ${target.kubeConfigPath} has no current cluster`);
      server = cluster.server;
      auth = kc;
    }
    return new ClientNodeTransport(server, auth, watchMod, http, {
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      watchIdleTimeoutMs: options.watchIdleTimeoutMs ?? 60_000,
    });
  }

  async list(path: string, options: { signal: AbortSignal }): Promise<ListResult> {
    const url = collectionUrl(this.server, path, {});
    const ctx = new this.http.RequestContext(url, this.http.HttpMethod.GET);
    ctx.setHeaderParam("Accept", "application/json");
    await this.auth.applySecurityAuthentication(ctx);
    ctx.setSignal(
      AbortSignal.any([options.signal, AbortSignal.timeout(this.options.requestTimeoutMs)]),
    );
    const res = await new this.http.IsomorphicFetchHttpLibrary().send(ctx).toPromise();
    const text = await res.body.text();
    if (res.httpStatusCode < 200 || res.httpStatusCode > 299) {
      const { reason, message } = statusReason(res.httpStatusCode, text);
      throw new KubeApiError("GET", url, res.httpStatusCode, reason, message);
    }
    const body = JSON.parse(text) as { items?: unknown; metadata?: { resourceVersion?: unknown } };
    return {
      items: Array.isArray(body.items) ? body.items : [],
      resourceVersion: String(body.metadata?.resourceVersion ?? ""),
    };
  }

  watch(
    path: string,
    resourceVersion: string,
    onEvent: (event: WatchEvent) => void,
    options: WatchOptions,
  ): Promise<void> {
    const w = new this.watchMod.Watch(this.auth as unknown as KubeConfig);
    // Under Deno, an aborted client-node watch (its own inactivity timer, or our abort)
    // closes the connection but never reaches its `done` callback: the web stream's abort
    // is not turned into a Node stream event. So we keep the inactivity timer ourselves and
    // end the promise on abort; the Watch's timer (private, set above ours) stays a backstop.
    const idleMs = this.options.watchIdleTimeoutMs;
    (w as unknown as { requestTimeoutMs: number }).requestTimeoutMs = idleMs * 2;
    const url = collectionUrl(this.server, path, {});
    return new Promise<void>((resolve, reject) => {
      let controller: AbortController | undefined;
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal.removeEventListener("abort", onAbort);
        controller?.abort();
        if (!err || options.signal.aborted) return resolve();
        if (err instanceof DOMException && err.name === "TimeoutError") return resolve();
        const status = (err as { statusCode?: unknown }).statusCode;
        if (typeof status === "number") {
          return reject(
            new KubeApiError("GET", url, status, (err as Error).message, "", { cause: err }),
          );
        }
        reject(err);
      };
      const onAbort = () => finish();
      const resetIdle = () => {
        clearTimeout(timer);
        timer = setTimeout(() => finish(), idleMs);
      };
      options.signal.addEventListener("abort", onAbort, { once: true });
      resetIdle();
      w.watch(
        path,
        { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: options.timeoutSeconds },
        (type, object) => {
          if (settled) return;
          resetIdle();
          onEvent({ type: type as WatchEvent["type"], object });
        },
        finish,
      ).then((c) => {
        controller = c;
        if (settled) c.abort();
      }, finish);
    });
  }
}

function overrideServer(kc: KubeConfig, master: string): void {
  const current = kc.getCurrentCluster();
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => c.name === current?.name ? { ...c, server: master } : c),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
}
