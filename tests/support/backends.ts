/** Small real backends for proxy tests: TCP echo, named HTTP, UDP echo. All on 127.0.0.1 port 0. */

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  }
}

export interface Backend {
  port: number;
  close(): Promise<void>;
}

/** Echoes every byte; on the client's FIN, finishes echoing then sends its own FIN. */
export function tcpEcho(hostname = "127.0.0.1"): Backend & { accepted: () => number } {
  const l = Deno.listen({ hostname, port: 0 });
  const conns = new Set<Deno.Conn>();
  let accepted = 0;
  const loop = (async () => {
    for await (const c of l) {
      accepted++;
      conns.add(c);
      (async () => {
        const buf = new Uint8Array(65536);
        try {
          for (;;) {
            const n = await c.read(buf);
            if (n === null) break;
            let off = 0;
            while (off < n) off += await c.write(buf.subarray(off, n));
          }
          await c.closeWrite();
          // Wait for the peer to close fully.
          await c.read(buf);
        } catch (err) {
          if (
            !(err instanceof Deno.errors.BadResource ||
              err instanceof Deno.errors.ConnectionReset ||
              err instanceof Deno.errors.NotConnected || err instanceof Deno.errors.BrokenPipe)
          ) throw err;
        } finally {
          conns.delete(c);
          closeQuietly(c);
        }
      })();
    }
  })();
  return {
    port: (l.addr as Deno.NetAddr).port,
    accepted: () => accepted,
    close: async () => {
      l.close();
      for (const c of conns) closeQuietly(c);
      await loop.catch((err) => {
        if (!(err instanceof Deno.errors.BadResource)) throw err;
      });
    },
  };
}

/**
 * Answers every HTTP request with its name (POST: name and body length); WebSocket upgrades
 * echo messages prefixed by the name.
 */
export function httpNamed(
  name: string,
  tls?: { cert: string; key: string },
): Backend & { requests: () => number } {
  let requests = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {}, ...tls },
    async (req) => {
      requests++;
      if (req.method === "POST") {
        return new Response(`${name}:${(await req.arrayBuffer()).byteLength}`);
      }
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
        const { socket, response } = Deno.upgradeWebSocket(req);
        socket.onmessage = (e) => socket.send(`${name}:${e.data}`);
        return response;
      }
      return new Response(name, { headers: { "x-backend": name } });
    },
  );
  return {
    port: server.addr.port,
    requests: () => requests,
    close: async () => {
      await server.shutdown();
    },
  };
}

/** Echoes every datagram back to its sender. */
export function udpEcho(): Backend {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const buf = new Uint8Array(65536);
  const loop = (async () => {
    for (;;) {
      try {
        const [d, addr] = await sock.receive(buf);
        await sock.send(d, addr);
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return;
        }
        throw err;
      }
    }
  })();
  return {
    port: (sock.addr as Deno.NetAddr).port,
    close: async () => {
      sock.close();
      await loop;
    },
  };
}

/** Runs a command, returning stdout; throws with stderr on failure. */
export async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}
