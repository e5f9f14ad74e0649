/**
 * `deno run --allow-net punch_main.ts LOCAL_IP LOCAL_PORT REMOTE_IP REMOTE_PORT [DEADLINE_MS] [RETRY_MS]`
 *
 * A bare TCP hole punch (simultaneous open): dials REMOTE from the fixed LOCAL port again and
 * again (every RETRY_MS, default 50; at most 10 000 times) until a connection forms or the
 * deadline passes, then exchanges one line. Shows that
 * the topology's NATs can be punched and what a punching implementation has to live with
 * (a NAT's kernel may answer early SYNs with RST). Prints one JSON line:
 * `{"ready":true,"connected":bool,"attempts":n,"ms":t,"peer":"…","errors":{code:count}}`.
 */

import net from "node:net";

function attempt(
  localAddress: string,
  localPort: number,
  host: string,
  port: number,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, localAddress, localPort });
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error("attempt timed out"), { code: "ATTEMPT_TIMEOUT" }));
    }, 500);
    s.once("connect", () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once("error", (err) => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    });
  });
}

function readLine(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString();
      const i = buf.indexOf("\n");
      if (i >= 0) resolve(buf.slice(0, i));
    });
    s.once("error", reject);
    s.once("end", () => resolve(buf));
  });
}

if (import.meta.main) {
  const [lip, lport, rip, rport, deadline, retry] = Deno.args;
  const retryMs = Number(retry ?? "50");
  const t0 = performance.now();
  const until = t0 + Number(deadline ?? "5000");
  const errors: Record<string, number> = {};
  let attempts = 0;
  let sock: net.Socket | undefined;
  while (!sock && performance.now() < until && attempts < 10_000) {
    attempts++;
    try {
      sock = await attempt(lip, Number(lport), rip, Number(rport));
    } catch (err) {
      const code = (err as { code?: string }).code ?? String(err);
      errors[code] = (errors[code] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
  let peer = "";
  if (sock) {
    sock.write(`hello from ${lip}\n`);
    peer = await readLine(sock);
    sock.end();
  }
  const ms = Math.round(performance.now() - t0);
  console.log(JSON.stringify({ ready: true, connected: !!sock, attempts, ms, peer, errors }));
  Deno.exit(0);
}
