/**
 * `deno run --allow-net --unstable-net backends_main.ts --name N --host IP [--http P] [--udp P] [--tcp P]`
 *
 * Small backends bound to a node's address, like hostPort pods (port 0: any free port):
 * - HTTP: `/` answers the name (header `x-backend`), `/whoami` answers
 *   `{"name","remote"}` with the peer address as seen here, `/bytes?n=N` streams N bytes of a
 *   fixed pattern (`pattern(i)`: checksum on the client), a WebSocket upgrade echoes every
 *   message prefixed by `<name>:`.
 * - UDP: echoes every datagram to its sender.
 * - TCP: echoes every byte, then half-closes after the client did.
 *
 * Prints one line `{"ready":true,"name",…,"http":P,"udp":P,"tcp":P}` once all listen.
 */

/** Byte `i` of every `/bytes` body. */
export function pattern(i: number): number {
  return (i * 31 + (i >>> 8)) & 0xff;
}

function bytesBody(n: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(ctrl) {
      if (sent >= n) return ctrl.close();
      const len = Math.min(64 * 1024, n - sent);
      const chunk = new Uint8Array(len);
      for (let j = 0; j < len; j++) chunk[j] = pattern(sent + j);
      sent += len;
      ctrl.enqueue(chunk);
    },
  });
}

function serveHttp(name: string, hostname: string, port: number): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname, port, onListen: () => {} }, (req, info) => {
    const url = new URL(req.url);
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`${name}:${e.data}`);
      return response;
    }
    if (url.pathname === "/whoami") {
      const remote = `${info.remoteAddr.hostname}:${info.remoteAddr.port}`;
      return Response.json({ name, remote });
    }
    if (url.pathname === "/bytes") {
      const n = Number(url.searchParams.get("n") ?? "0");
      return new Response(bytesBody(n), {
        headers: { "content-length": String(n), "x-backend": name },
      });
    }
    return new Response(name, { headers: { "x-backend": name } });
  });
}

function serveUdp(hostname: string, port: number): number {
  const sock = Deno.listenDatagram({ transport: "udp", hostname, port });
  (async () => {
    const buf = new Uint8Array(65536);
    for (;;) {
      const [d, addr] = await sock.receive(buf);
      await sock.send(d, addr);
    }
  })();
  return (sock.addr as Deno.NetAddr).port;
}

function serveTcp(hostname: string, port: number): number {
  const l = Deno.listen({ hostname, port });
  (async () => {
    for await (const c of l) {
      (async () => {
        try {
          await c.readable.pipeTo(c.writable, { preventClose: true });
          await c.closeWrite();
        } catch (err) {
          if (
            !(err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe)
          ) {
            console.error(`tcp echo: ${err}`);
          }
        }
      })();
    }
  })();
  return (l.addr as Deno.NetAddr).port;
}

/** `--key value` pairs. */
function flags(args: string[]): Record<string, string | undefined> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i += 2) {
    if (!args[i].startsWith("--") || args[i + 1] === undefined) {
      throw new Error(`bad argument "${args[i]}"`);
    }
    out[args[i].slice(2)] = args[i + 1];
  }
  return out;
}

if (import.meta.main) {
  const a = flags(Deno.args);
  if (!a.host) {
    console.error("--host is required");
    Deno.exit(2);
  }
  const name = a.name ?? a.host;
  const out: Record<string, unknown> = { ready: true, name, host: a.host };
  if (a.http !== undefined) out.http = serveHttp(name, a.host, Number(a.http)).addr.port;
  if (a.udp !== undefined) out.udp = serveUdp(a.host, Number(a.udp));
  if (a.tcp !== undefined) out.tcp = serveTcp(a.host, Number(a.tcp));
  console.log(JSON.stringify(out));
}
