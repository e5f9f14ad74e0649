/** The admin HTTP API: /healthz, /readyz, /metrics, /api/v1/status (and routes modules add). */

import type { Logger } from "../log/mod.ts";
import { isServing, type Service, type ServiceStatus } from "../lifecycle/mod.ts";
import { PROMETHEUS_CONTENT_TYPE, type Registry } from "../metrics/mod.ts";
import { AdminBindError } from "./errors.ts";

export type RouteHandler = (req: Request, url: URL) => Response | Promise<Response>;

export interface AdminDeps {
  logger: Logger;
  metrics: Registry;
  /** Statuses of every enabled module, for /readyz. */
  modules: () => Record<string, ServiceStatus>;
  /** The JSON document of GET /api/v1/status. */
  status: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Extra GET routes by exact path (e.g. "/api/v1/ping"). */
  routes?: Record<string, RouteHandler>;
}

export interface AdminOptions {
  /** "host:port" for the admin API. */
  hostname: string;
  port: number;
  /** Serve /metrics also on this port (EdgeMesh's metricConfig), 0 = no. */
  metricsPort?: number;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });

export class AdminServer implements Service {
  readonly name = "admin";
  #servers: Deno.HttpServer[] = [];
  #state: ServiceStatus = { state: "stopped", detail: "" };
  #addr = "";

  constructor(private readonly deps: AdminDeps, private readonly options: AdminOptions) {}

  /** The bound "host:port" (useful with port 0). */
  get address(): string {
    return this.#addr;
  }

  start(_signal: AbortSignal): Promise<void> {
    this.#state = { state: "starting", detail: "" };
    const main = this.#listen(
      this.options.hostname,
      this.options.port,
      (req) => this.#handle(req, false),
    );
    const a = main.addr as Deno.NetAddr;
    this.#addr = a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
    if (this.options.metricsPort) {
      this.#listen(
        this.options.hostname,
        this.options.metricsPort,
        (req) => this.#handle(req, true),
      );
    }
    this.#state = { state: "ready", detail: `listening on ${this.#addr}` };
    return Promise.resolve();
  }

  #listen(
    hostname: string,
    port: number,
    handler: (req: Request) => Promise<Response>,
  ): Deno.HttpServer {
    try {
      const server = Deno.serve({ hostname, port, onListen: () => {} }, handler);
      this.#servers.push(server);
      return server;
    } catch (err) {
      throw new AdminBindError(`${hostname}:${port}`, err);
    }
  }

  async #handle(req: Request, metricsOnly: boolean): Promise<Response> {
    const url = new URL(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    try {
      if (url.pathname === "/metrics") {
        return new Response(this.deps.metrics.render(), {
          headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
        });
      }
      if (metricsOnly) return new Response("not found\n", { status: 404 });
      switch (url.pathname) {
        case "/healthz":
          return new Response("ok\n");
        case "/readyz": {
          const mods = this.deps.modules();
          const notReady = Object.entries(mods).filter(([, s]) => !isServing(s.state));
          if (notReady.length === 0) return new Response("ok\n");
          return new Response(
            "not ready:\n" + notReady.map(([n, s]) =>
              `  ${n}: ${s.state}${s.detail ? ` (${s.detail})` : ""}`
            ).join("\n") +
              "\n",
            { status: 503 },
          );
        }
        case "/api/v1/status":
          return json(await this.deps.status());
      }
      const route = this.deps.routes?.[url.pathname];
      if (route) return await route(req, url);
      return new Response("not found\n", { status: 404 });
    } catch (err) {
      this.deps.logger.error("admin request failed", { path: url.pathname, error: err });
      return json({ error: (err as Error).message }, 500);
    }
  }

  async stop(): Promise<void> {
    const servers = this.#servers;
    this.#servers = [];
    await Promise.all(servers.map((s) => s.shutdown()));
    this.#state = { state: "stopped", detail: "" };
  }

  status(): ServiceStatus {
    return this.#state;
  }
}
