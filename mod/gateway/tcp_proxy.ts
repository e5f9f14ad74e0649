/** TCP, terminated TLS and SNI-passthrough TLS connections: route, connect, copy both ways. */

import { BufReader } from "./buf_reader.ts";
import { NoEndpointReason } from "./destinations.ts";
import { connectDestination, pickWeighted, type ProxyContext, scopedAbort } from "./dispatch.ts";
import type { ListenerPlan } from "./route_table.ts";
import { NotTlsError, peekSni } from "./sni.ts";
import { splice, type Wire } from "./wire.ts";

export interface L4ConnInfo {
  remoteIp: string;
  plan: ListenerPlan;
  /** Passthrough: read the SNI from the ClientHello and route by tls[] routes. */
  bySni: boolean;
}

/** Serves one connection until both directions end; never throws for per-connection errors. */
export async function serveL4(client: Wire, info: L4ConnInfo, ctx: ProxyContext): Promise<void> {
  const reader = client.readable.getReader();
  const buf = new BufReader(reader);
  let routeName = "";
  try {
    let hit;
    let sni: string | undefined;
    if (info.bySni) {
      try {
        sni = await peekSni(buf, ctx.limits.headerTimeoutMs);
      } catch (err) {
        if (
          !(err instanceof NotTlsError ||
            (err instanceof DOMException && err.name === "TimeoutError"))
        ) throw err;
        ctx.log.debug("passthrough connection without a usable ClientHello", {
          client: info.remoteIp,
          error: err,
        });
        ctx.metrics.l4.inc({ route: "", result: "no_route" });
        return;
      }
      hit = ctx.table().matchTls(info.plan, sni);
    } else {
      hit = ctx.table().matchTcp(info.plan);
    }
    if (!hit) {
      ctx.metrics.l4.inc({ route: "", result: "no_route" });
      ctx.log.debug("no route for connection", { port: info.plan.port, sni });
      return;
    }
    routeName = hit.route.name;
    const dest = pickWeighted(hit.route.route, ctx.random);
    const scope = scopedAbort(ctx.signal, ctx.limits.connectTimeoutMs * ctx.limits.connectTries);
    let up;
    try {
      up = await connectDestination(
        ctx,
        dest,
        { clientIp: info.remoteIp },
        scope.signal,
        new Set(),
      );
    } finally {
      scope.dispose();
    }
    if (up instanceof NoEndpointReason) {
      ctx.metrics.l4.inc({ route: routeName, result: "no_endpoint" });
      ctx.log.info("connection refused: no endpoint", { route: routeName, reason: up.message });
      return;
    }
    const upReader = up.reader;
    try {
      const early = buf.takeBuffered();
      if (early.length) await up.wire.write(early);
      const idle = ctx.limits.tcpIdleTimeoutMs;
      await splice(
        { reader, wire: client },
        { reader: upReader, wire: up.wire },
        idle,
        (direction, n) => ctx.metrics.bytes.inc({ route: routeName, direction }, n),
      );
      ctx.metrics.l4.inc({ route: routeName, result: "ok" });
    } finally {
      up.wire.close();
      up.release();
      upReader.cancel().catch(() => {});
    }
  } catch (err) {
    ctx.metrics.l4.inc({ route: routeName, result: "error" });
    ctx.log.debug("connection ended with an error", { route: routeName, error: err });
  } finally {
    client.close();
    reader.cancel().catch(() => {});
  }
}
