/**
 * The HTTP/1.1 side of the gateway: reads requests off a client connection (keep-alive),
 * routes them, streams bodies both ways, passes upgrades (WebSocket) through.
 */

import { BufReader } from "./buf_reader.ts";
import type { ProxyContext } from "./dispatch.ts";
import { HttpParseError } from "./errors.ts";
import { forward } from "./http_forward.ts";
import { isTimeout, respond } from "./http_util.ts";
import {
  type Framing,
  getHeader,
  headerTokens,
  parseRequestHead,
  reasonPhrase,
  requestFraming,
  type RequestHead,
} from "./http1.ts";
import { normalizeHost } from "./match.ts";
import type { ListenerPlan } from "./route_table.ts";
import type { Wire } from "./wire.ts";

export interface HttpConnInfo {
  remoteIp: string;
  plan: ListenerPlan;
  scheme: "http" | "https";
}

/** Serves one client connection until it closes; never throws for per-connection errors. */
export async function serveHttp(
  client: Wire,
  info: HttpConnInfo,
  ctx: ProxyContext,
): Promise<void> {
  const reader = client.readable.getReader();
  const buf = new BufReader(reader);
  // While draining, a connection waiting for its next request is closed at once.
  const state = { idle: true };
  const onDrain = () => {
    if (state.idle) client.close();
  };
  ctx.draining.addEventListener("abort", onDrain, { once: true });
  try {
    while (!ctx.draining.aborted) {
      state.idle = true;
      if (!await handleRequest(client, buf, info, ctx, state)) break;
    }
  } catch (err) {
    ctx.log.debug("client connection ended with an error", { client: info.remoteIp, error: err });
  } finally {
    ctx.draining.removeEventListener("abort", onDrain);
    client.close();
    reader.cancel().catch(() => {});
  }
}

/** Reads and proxies one request. Returns true when the connection may carry another. */
async function handleRequest(
  client: Wire,
  buf: BufReader,
  info: HttpConnInfo,
  ctx: ProxyContext,
  state: { idle: boolean },
): Promise<boolean> {
  const { limits } = ctx;
  let req: RequestHead;
  let framing: Framing;
  try {
    const head = await buf.readHead(
      limits.maxHeaderBytes,
      limits.idleTimeoutMs,
      limits.headerTimeoutMs,
    );
    if (!head) return false;
    state.idle = false;
    req = parseRequestHead(head, limits.maxHeaderCount);
    framing = requestFraming(req.headers);
  } catch (err) {
    if (err instanceof HttpParseError) {
      ctx.metrics.requests.inc({ route: "", code: err.tooLarge ? 431 : 400 });
      return await respond(client, err.tooLarge ? 431 : 400, err.message, false);
    }
    if (isTimeout(err)) {
      if (buf.buffered > 0) await respond(client, 408, "request head not received in time", false);
      return false;
    }
    throw err;
  }
  const t0 = performance.now();
  const clientKeep = req.version === "HTTP/1.1"
    ? !headerTokens(req.headers, "connection").includes("close")
    : headerTokens(req.headers, "connection").includes("keep-alive");
  // The connection can carry another request only if this one's body is read entirely.
  const bodyless = framing.kind === "none";
  let target = req.target;
  let authority = getHeader(req.headers, "host") ?? "";
  if (/^https?:\/\//i.test(target)) {
    const u = URL.parse(target);
    if (!u) return await respond(client, 400, "bad request target", false);
    authority = u.host;
    target = u.pathname + u.search;
  }
  const host = normalizeHost(authority);
  const q = target.indexOf("?");
  const path = q >= 0 ? target.slice(0, q) : target;
  const query = new URLSearchParams(q >= 0 ? target.slice(q + 1) : "");
  const header = (n: string) => getHeader(req.headers, n);
  const table = ctx.table();
  if (info.scheme === "http" && table.serversFor(info.plan, host).some((s) => s.httpsRedirect)) {
    ctx.metrics.requests.inc({ route: "", code: 301 });
    return await respond(client, 301, "moved to https", clientKeep && bodyless, [
      ["Location", `https://${authority.replace(/:\d+$/, "")}${target}`],
    ]);
  }
  const hit = table.matchHttp(info.plan, host, {
    path,
    query,
    method: req.method,
    authority,
    header,
    port: info.plan.port,
  });
  const finish = (route: string, code: number) => {
    ctx.metrics.requests.inc({ route, code });
    ctx.metrics.duration.observe((performance.now() - t0) / 1000, { route });
  };
  if (!hit) {
    finish("", 404);
    return await respond(
      client,
      404,
      `no route for ${host || "(no host)"}${path}`,
      clientKeep && bodyless,
    );
  }
  const { route } = hit;
  if (route.directStatus !== undefined) {
    finish(route.name, route.directStatus);
    return await respond(
      client,
      route.directStatus,
      reasonPhrase(route.directStatus),
      clientKeep && bodyless,
    );
  }
  const upgrade = headerTokens(req.headers, "connection").includes("upgrade")
    ? getHeader(req.headers, "upgrade")
    : undefined;
  const out = await forward(client, buf, req, framing, {
    hit,
    path,
    query: q >= 0 ? target.slice(q) : "",
    upgrade,
    info,
    ctx,
    clientKeep,
  });
  finish(route.name, out.status);
  return out.keep && clientKeep;
}
