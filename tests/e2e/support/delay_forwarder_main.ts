/**
 * `deno run --allow-net delay_forwarder_main.ts LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS`
 *
 * Forwards TCP connections, holding every chunk `DELAY_MS` before writing it on (in order,
 * per direction). At most 4 MiB wait in each direction; the reader pauses beyond that.
 * Prints `{"ready":true,"port":N}` once it listens.
 */

const MAX_QUEUED = 4 * 1024 * 1024;

function hostPort(s: string): { hostname: string; port: number } {
  const i = s.lastIndexOf(":");
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port)) throw new Error(`Not host:port: "${s}"`);
  return { hostname: s.slice(0, i), port };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Copies src → dst, each chunk written `delayMs` after it was read; half-closes dst at EOF. */
async function pipeDelayed(src: Deno.Conn, dst: Deno.Conn, delayMs: number): Promise<void> {
  // A chain of delayed writes that never rejects: the first failure is kept in `state`.
  let chain: Promise<void> = Promise.resolve();
  const state: { failed?: { error: unknown } } = {};
  const rethrow = () => {
    if (state.failed) throw state.failed.error;
  };
  let queued = 0;
  const later = (due: number, write: () => Promise<void>) => {
    chain = chain.then(async () => {
      if (state.failed) return;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      await write();
    }).catch((error) => {
      state.failed ??= { error };
    });
  };
  for (;;) {
    const buf = new Uint8Array(64 * 1024);
    const n = await src.read(buf);
    rethrow();
    const due = performance.now() + delayMs;
    if (n === null) {
      later(due, () => dst.closeWrite());
      break;
    }
    const data = buf.subarray(0, n);
    queued += n;
    later(due, async () => {
      let off = 0;
      while (off < data.length) off += await dst.write(data.subarray(off));
      queued -= data.length;
    });
    if (queued > MAX_QUEUED) await chain;
  }
  await chain;
  rethrow();
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  }
}

async function handle(
  client: Deno.Conn,
  target: { hostname: string; port: number },
  delayMs: number,
) {
  let upstream: Deno.Conn;
  try {
    upstream = await Deno.connect(target);
  } catch (err) {
    console.error(`connect ${target.hostname}:${target.port} failed: ${err}`);
    closeQuietly(client);
    return;
  }
  try {
    await Promise.all([
      pipeDelayed(client, upstream, delayMs),
      pipeDelayed(upstream, client, delayMs),
    ]);
  } catch (err) {
    // Resets and broken pipes end the connection; anything else is worth seeing.
    if (
      !(err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
        err instanceof Deno.errors.NotConnected || err instanceof Deno.errors.BadResource)
    ) {
      console.error(`forwarding failed: ${err}`);
    }
  } finally {
    closeQuietly(client);
    closeQuietly(upstream);
  }
}

if (import.meta.main) {
  const [listen, target, delay] = Deno.args;
  const delayMs = Number(delay);
  if (!listen || !target || !Number.isFinite(delayMs) || delayMs < 0) {
    console.error("usage: delay_forwarder_main.ts LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS");
    Deno.exit(2);
  }
  const l = Deno.listen(hostPort(listen));
  const to = hostPort(target);
  console.log(
    JSON.stringify({ ready: true, port: (l.addr as Deno.NetAddr).port, target, delayMs }),
  );
  for await (const c of l) handle(c, to, delayMs);
}
