/**
 * Forwarding one routed HTTP request: weighted destination, retries and timeouts, the
 * upstream exchange with streamed bodies both ways, and upgrades (WebSocket) as a tunnel.
 */

import type { BufReader } from "./buf_reader.ts";
import { NoEndpointReason } from "./destinations.ts";
import {
  connectDestination,
  type Connected,
  pickWeighted,
  type ProxyContext,
  scopedAbort,
} from "./dispatch.ts";
import type { HttpConnInfo } from "./http_proxy.ts";
import { respond } from "./http_util.ts";
import {
  BodyReader,
  endBody,
  type Framing,
  getHeader,
  type HeaderList,
  headerTokens,
  parseResponseHead,
  reasonPhrase,
  removeHeader,
  type RequestHead,
  responseFraming,
  type ResponseHead,
  serializeHead,
  setHeader,
  stripHopByHop,
  writeBodyPiece,
} from "./http1.ts";
import type { HeaderOps, HttpRoute } from "./model.ts";
import type { PickContext } from "./picker.ts";
import type { HttpRouteHit } from "./route_table.ts";
import { splice, type Wire, withTimeout } from "./wire.ts";

const MAX_UPSTREAM_HEAD = 64 * 1024;

export interface ForwardArgs {
  hit: HttpRouteHit;
  path: string;
  /** "?a=b" or "" */
  query: string;
  upgrade?: string;
  info: HttpConnInfo;
  ctx: ProxyContext;
  clientKeep: boolean;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function applyOps(headers: HeaderList, ops: HeaderOps | undefined): HeaderList {
  if (!ops) return headers;
  let h = headers;
  for (const [k, v] of ops.set) h = setHeader(h, k, v);
  for (const [k, v] of ops.add) h = [...h, [k, v]];
  for (const k of ops.remove) h = removeHeader(h, k);
  return h;
}

function rewritePath(route: HttpRoute, hit: HttpRouteHit, path: string): string {
  if (route.rewriteUri === undefined) return path;
  const uri = hit.match?.uri;
  if (uri?.kind === "prefix" && path.startsWith(uri.value)) {
    const rest = path.slice(uri.value.length);
    const joined = route.rewriteUri + rest;
    return joined.startsWith("/") ? joined.replace(/^\/\/+/, "/") : "/" + joined;
  }
  return route.rewriteUri || "/";
}

/** Proxies one routed request; returns the status sent and whether keep-alive is possible. */
export async function forward(
  client: Wire,
  buf: BufReader,
  req: RequestHead,
  framing: Framing,
  a: ForwardArgs,
): Promise<{ status: number; keep: boolean }> {
  const { hit, info, ctx } = a;
  const { route } = hit;
  const bodyless = framing.kind === "none";
  const keepIfBodyless = a.clientKeep && bodyless;
  const dest = pickWeighted(route.route, ctx.random);
  const xff = getHeader(req.headers, "x-forwarded-for");
  let headers = stripHopByHop(req.headers);
  headers = setHeader(headers, "X-Forwarded-For", xff ? `${xff}, ${info.remoteIp}` : info.remoteIp);
  headers = setHeader(headers, "X-Forwarded-Proto", info.scheme);
  headers = applyOps(applyOps(headers, route.requestHeaders), dest.headers);
  // Without Connection: close, HTTP/1.1 upstream connections stay open for reuse.
  if (a.upgrade) headers.push(["Connection", "Upgrade"], ["Upgrade", a.upgrade]);
  if (framing.kind === "length") headers.push(["Content-Length", String(framing.length)]);
  if (framing.kind === "chunked") headers.push(["Transfer-Encoding", "chunked"]);
  const upstreamHead = serializeHead(
    `${req.method} ${rewritePath(route, hit, a.path)}${a.query} HTTP/1.1`,
    headers,
  );

  const pick: PickContext = {
    clientIp: info.remoteIp,
    header: (n) => getHeader(req.headers, n),
    cookie: (n) => cookieValue(getHeader(req.headers, "cookie"), n),
    query: (n) => new URLSearchParams(a.query).get(n) ?? undefined,
  };
  const deadline = route.timeoutMs ? performance.now() + route.timeoutMs : Infinity;
  // Only a request without body can be replayed; connect failures are retried per endpoint.
  const attempts = bodyless ? 1 + (route.retries?.attempts ?? 0) : 1;
  const avoid = new Set<string>();
  const body = new BodyReader(buf, framing, ctx.limits.idleTimeoutMs);
  let lastStatus = 503;
  let lastText = "no endpoint";
  // A pooled connection the upstream closed meanwhile costs one extra, fresh try.
  let usePool = bodyless && !a.upgrade;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) ctx.metrics.retries.inc({ route: route.name });
    const left = deadline - performance.now();
    if (left <= 0) {
      lastStatus = 504;
      lastText = "upstream timed out";
      break;
    }
    const perTry = Math.min(left, route.retries?.perTryTimeoutMs ?? Infinity);
    const scope = scopedAbort(ctx.signal, perTry);
    const signal = scope.signal;
    let up: Connected | NoEndpointReason | undefined;
    try {
      up = await connectDestination(ctx, dest, pick, signal, avoid, usePool ? ctx.pool : undefined);
      if (up instanceof NoEndpointReason) {
        [lastStatus, lastText] = scope.timedOut() ? [504, "upstream timed out"] : [503, up.message];
        continue;
      }
      const progress = { clientWritten: false };
      let result: ExchangeResult;
      try {
        result = await exchange(
          client,
          buf,
          body,
          up,
          upstreamHead,
          req,
          a,
          signal,
          attempt + 1 < attempts,
          progress,
        );
      } catch (err) {
        // Before anything reached the client, an upstream failure still gets an answer.
        if (progress.clientWritten) throw err;
        result = { fail: `upstream failed: ${err instanceof Error ? err.message : String(err)}` };
      }
      if (result === "retry") {
        [lastStatus, lastText] = scope.timedOut()
          ? [504, "upstream timed out"]
          : [503, "upstream answered 503"];
        continue;
      }
      if (typeof result === "object" && "fail" in result && up.reused && !scope.timedOut()) {
        usePool = false;
        avoid.delete(up.endpoint.id);
        attempt--;
        continue;
      }
      if (typeof result === "object" && "fail" in result) {
        [lastStatus, lastText] = scope.timedOut()
          ? [504, "upstream timed out"]
          : [502, result.fail];
        continue;
      }
      if (result.reusable) {
        ctx.pool.put(up.endpoint.id, up);
        up.release();
        up = undefined;
      }
      return { status: result.status, keep: result.keep };
    } finally {
      scope.dispose();
      if (up && !(up instanceof NoEndpointReason)) {
        up.wire.close();
        up.reader.cancel().catch(() => {});
        up.release();
      }
    }
  }
  if (lastStatus !== 503 || !(lastText.startsWith("no "))) {
    ctx.log.debug("request failed", { route: route.name, status: lastStatus, reason: lastText });
  }
  return {
    status: lastStatus,
    keep: await respond(client, lastStatus, lastText, keepIfBodyless && body.done),
  };
}

type ExchangeResult =
  | { status: number; keep: boolean; reusable: boolean }
  | "retry"
  | { fail: string };

/** One attempt: send the request, stream the response back. */
async function exchange(
  client: Wire,
  buf: BufReader,
  body: BodyReader,
  up: Connected,
  upstreamHead: Uint8Array,
  req: RequestHead,
  a: ForwardArgs,
  signal: AbortSignal,
  canRetry: boolean,
  progress: { clientWritten: boolean },
): Promise<ExchangeResult> {
  const { ctx, hit } = a;
  const idle = ctx.limits.idleTimeoutMs;
  const onAbort = () => up.wire.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await up.wire.write(upstreamHead);
    const framingChunked = !body.done && headerTokens(req.headers, "transfer-encoding").length > 0;
    let pumpDone = body.done;
    const pump = body.done ? Promise.resolve() : (async () => {
      for (let piece = await body.next(); piece; piece = await body.next()) {
        await withTimeout(writeBodyPiece(up.wire, framingChunked, piece), idle, "request write");
      }
      await endBody(up.wire, framingChunked);
      pumpDone = true;
    })();
    pump.catch((err) => {
      ctx.log.debug("request body not delivered", { route: hit.route.name, error: err });
      up.wire.close();
    });
    const upBuf = up.buf;
    let res: ResponseHead;
    for (;;) {
      let head: Uint8Array | null;
      try {
        head = await upBuf.readHead(MAX_UPSTREAM_HEAD, idle, idle);
        if (!head) return { fail: "upstream closed without a response" };
        res = parseResponseHead(head, 1000);
      } catch (err) {
        // Parse errors, timeouts, resets: all mean this upstream gave no usable answer.
        if (!(err instanceof Error)) throw err;
        return { fail: `no valid upstream response: ${err.message}` };
      }
      if (res.status === 101 && a.upgrade) {
        progress.clientWritten = true;
        return await tunnel(client, buf, up, upBuf, res, ctx);
      }
      if (res.status >= 100 && res.status < 200) {
        if (req.version === "HTTP/1.1") {
          progress.clientWritten = true;
          await client.write(serializeHead(`HTTP/1.1 ${res.status} ${res.reason}`, res.headers));
        }
        continue;
      }
      break;
    }
    if (res.status === 503 && canRetry && hit.route.retries) return "retry";
    // The route timeout keeps running through the body (Envoy's route timeout ends with the
    // complete response): when it fires now the upstream is closed and the body cut.
    const resFraming = responseFraming(req.method, res.status, res.headers);
    let keep = a.clientKeep;
    let headers = applyOps(stripHopByHop(res.headers), hit.route.responseHeaders);
    if (up.setCookie) headers.push(["Set-Cookie", up.setCookie]);
    let chunked = false;
    if (resFraming.kind === "length") headers.push(["Content-Length", String(resFraming.length)]);
    else if (resFraming.kind === "none") {
      const cl = getHeader(res.headers, "content-length");
      if (cl !== undefined && res.status !== 204) headers.push(["Content-Length", cl]);
    } else if (req.version === "HTTP/1.1") {
      headers.push(["Transfer-Encoding", "chunked"]);
      chunked = true;
    } else keep = false;
    if (!keep) headers = setHeader(headers, "Connection", "close");
    progress.clientWritten = true;
    await client.write(
      serializeHead(`HTTP/1.1 ${res.status} ${res.reason || reasonPhrase(res.status)}`, headers),
    );
    const resBody = new BodyReader(upBuf, resFraming, idle);
    let sent = 0;
    try {
      for (let piece = await resBody.next(); piece; piece = await resBody.next()) {
        sent += piece.length;
        await withTimeout(writeBodyPiece(client, chunked, piece), idle, "response write");
      }
      await endBody(client, chunked);
    } catch (err) {
      // Headers are out: the only honest signal left is closing the connection.
      ctx.log.debug("response body cut", { route: hit.route.name, error: err });
      return { status: res.status, keep: false, reusable: false };
    } finally {
      ctx.metrics.bytes.inc({ route: hit.route.name, direction: "tx" }, sent);
    }
    // The upstream connection can serve again when both messages ended by their framing.
    const reusable = pumpDone && !signal.aborted && res.version === "HTTP/1.1" &&
      resFraming.kind !== "close" && !headerTokens(res.headers, "connection").includes("close");
    // The client's body must be fully read before another request can follow.
    return { status: res.status, keep: keep && pumpDone, reusable };
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** After a 101: pass bytes both ways until both sides are done. */
async function tunnel(
  client: Wire,
  buf: BufReader,
  up: Connected,
  upBuf: BufReader,
  res: ResponseHead,
  ctx: ProxyContext,
): Promise<{ status: number; keep: boolean; reusable: false }> {
  const headers = res.headers.filter(([k]) => k.toLowerCase() !== "keep-alive");
  await client.write(serializeHead(`HTTP/1.1 101 ${res.reason || "Switching Protocols"}`, headers));
  const early = upBuf.takeBuffered();
  if (early.length) await client.write(early);
  const pending = buf.takeBuffered();
  if (pending.length) await up.wire.write(pending);
  const idle = ctx.limits.tcpIdleTimeoutMs;
  try {
    await splice(
      { reader: buf.reader, wire: client },
      { reader: upBuf.reader, wire: up.wire },
      idle,
    );
  } catch (err) {
    ctx.log.debug("upgraded connection ended", { error: err });
  }
  return { status: 101, keep: false, reusable: false };
}
