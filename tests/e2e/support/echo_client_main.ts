/**
 * `deno run --allow-net --unstable-net echo_client_main.ts ws|udp HOST PORT MESSAGE [TIMEOUT_MS]`
 *
 * One-shot clients for the echo backends of backends_main.ts, run inside a namespace (curl
 * has no WebSocket and socat's UDP client cannot bound its wait well):
 * - `ws`: opens `ws://HOST:PORT/`, sends MESSAGE, prints the first message received.
 * - `udp`: sends MESSAGE as one datagram (re-sent every 200 ms), prints the first reply.
 *
 * Exit 0 with the reply on stdout; exit 1 with the reason on stderr on timeout or error.
 */

const UDP_RESEND_MS = 200;

async function ws(host: string, port: number, msg: string, signal: AbortSignal): Promise<string> {
  const sock = new WebSocket(`ws://${host}:${port}/`);
  try {
    return await new Promise<string>((resolve, reject) => {
      sock.onopen = () => sock.send(msg);
      sock.onmessage = (e) => resolve(String(e.data));
      sock.onerror = (e) => reject(new Error(`websocket error: ${(e as ErrorEvent).message}`));
      sock.onclose = (e) => reject(new Error(`websocket closed (${e.code})`));
      signal.addEventListener("abort", () => reject(new Error("timed out")), { once: true });
    });
  } finally {
    sock.onclose = null;
    sock.close();
  }
}

async function udp(host: string, port: number, msg: string, signal: AbortSignal): Promise<string> {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  const data = new TextEncoder().encode(msg);
  const to: Deno.NetAddr = { transport: "udp", hostname: host, port };
  const resend = setInterval(() => sock.send(data, to).catch(() => {}), UDP_RESEND_MS);
  signal.addEventListener("abort", () => sock.close(), { once: true });
  try {
    await sock.send(data, to);
    const [reply] = await sock.receive();
    return new TextDecoder().decode(reply);
  } catch (err) {
    throw signal.aborted ? new Error("timed out") : err;
  } finally {
    clearInterval(resend);
    if (!signal.aborted) sock.close();
  }
}

if (import.meta.main) {
  const [mode, host, port, msg, timeout] = Deno.args;
  const signal = AbortSignal.timeout(Number(timeout ?? "3000"));
  try {
    const fn = mode === "ws" ? ws : mode === "udp" ? udp : undefined;
    if (!fn) throw new Error(`unknown mode "${mode}" (ws or udp)`);
    console.log(await fn(host, Number(port), msg, signal));
    Deno.exit(0);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
