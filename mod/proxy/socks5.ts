/**
 * SOCKS5 (RFC 1928, no authentication, CONNECT): reach a service or a node by name without
 * iptables or root — `curl --socks5-hostname HOST:10800 http://svc.ns:port/`, or
 * `ssh -o ProxyCommand='nc -X 5 -x HOST:10800 %h %p' node-name`. Service names and
 * ClusterIPs go through the service proxy's own listener (same balancing, same paths); node
 * names go through the tunnel to that node's address. Anything else is refused: this is not
 * an open proxy.
 */

import type { ByteStream, Dialer } from "../contracts/mod.ts";
import { DialError } from "../contracts/mod.ts";
import type { ServiceCatalog, StoreReader } from "../kube/mod.ts";
import type { Service, ServiceStatus } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import { ConnDuplex, type Duplex, StreamDuplex } from "./duplex.ts";
import { ListenError } from "./errors.ts";
import { isConnectionError, relay } from "./relay.ts";

/** SOCKS5 reply codes. */
export const REP = {
  ok: 0,
  failure: 1,
  notAllowed: 2,
  networkUnreachable: 3,
  hostUnreachable: 4,
  refused: 5,
  ttlExpired: 6,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;

export interface Socks5Deps {
  logger: Logger;
  metrics: Registry;
  catalog: ServiceCatalog;
  store: StoreReader;
  dialer: Dialer;
  /** The proxy's listener for a service port (ServiceProxy.listenerFor). */
  serviceListener(
    namespace: string,
    name: string,
    port: number,
  ): { hostname: string; port: number } | undefined;
}

export interface Socks5Options {
  nodeName: string;
  listenAddress: string;
  listenPort: number;
  clusterDomain: string;
  tcpIdleTimeoutMs: number;
  /** Handshake must complete within this (default 10 s). */
  handshakeTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export type Socks5Target =
  | { kind: "service"; namespace: string; name: string; port: number }
  | { kind: "node"; node: string; ip: string; port: number };

/** Maps a requested host to a service or a node; undefined when it is neither. */
export function resolveSocksTarget(
  host: string,
  port: number,
  deps: Pick<Socks5Deps, "catalog" | "store">,
  clusterDomain: string,
): Socks5Target | undefined {
  const h = host.toLowerCase().replace(/\.$/, "");
  const svcByIP = deps.catalog.byClusterIP(h);
  if (svcByIP) return { kind: "service", namespace: svcByIP.namespace, name: svcByIP.name, port };
  const node = deps.store.get("nodes", undefined, h);
  if (node) {
    const addrs = node.status?.addresses ?? [];
    const ip = addrs.find((a) => a.type === "InternalIP")?.address ??
      addrs.find((a) => a.type === "ExternalIP")?.address;
    if (ip) return { kind: "node", node: h, ip, port };
  }
  let name = h;
  for (const suffix of [`.svc.${clusterDomain}`, ".svc"]) {
    if (name.endsWith(suffix)) {
      name = name.slice(0, -suffix.length);
      break;
    }
  }
  const parts = name.split(".");
  if (parts.length !== 2) return undefined;
  const svc = deps.catalog.get(parts[1], parts[0]);
  return svc ? { kind: "service", namespace: svc.namespace, name: svc.name, port } : undefined;
}

class HandshakeError extends Error {
  override name = "HandshakeError";
  constructor(readonly rep: number, message: string) {
    super(message);
  }
}

/** Reads exactly n bytes. */
async function readN(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await conn.read(out.subarray(off));
    if (r === null) throw new HandshakeError(REP.failure, "client closed during the handshake");
    off += r;
  }
  return out;
}

export class Socks5Server implements Service {
  readonly name = "socks5";
  #listener?: Deno.TcpListener;
  #serving?: Promise<void>;
  #conns = new Set<Duplex>();
  #abort = new AbortController();
  #state: ServiceStatus = { state: "stopped", detail: "" };
  readonly #connections;
  readonly #errors;

  constructor(private readonly deps: Socks5Deps, private readonly options: Socks5Options) {
    this.#connections = deps.metrics.counter(
      "edgemesh_socks5_connections_total",
      "SOCKS5 connections by target kind.",
      ["kind"],
    );
    this.#errors = deps.metrics.counter(
      "edgemesh_socks5_errors_total",
      "SOCKS5 requests refused or failed, by reply code.",
      ["rep"],
    );
  }

  get port(): number {
    return this.#listener?.addr.port ?? 0;
  }

  start(_signal: AbortSignal): Promise<void> {
    const { listenAddress, listenPort } = this.options;
    try {
      this.#listener = Deno.listen({ hostname: listenAddress, port: listenPort });
    } catch (err) {
      return Promise.reject(
        new ListenError(`${listenAddress}:${listenPort}`, "socks5", { cause: err }),
      );
    }
    this.#abort = new AbortController();
    this.#serving = this.#accept(this.#listener);
    this.#state = { state: "ready", detail: `listening on ${listenAddress}:${this.port}` };
    return Promise.resolve();
  }

  async #accept(l: Deno.TcpListener): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await l.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || this.#abort.signal.aborted) return;
        if (isConnectionError(err)) continue;
        throw err;
      }
      this.#handle(conn).catch((err) =>
        this.deps.logger.error("socks5 connection failed", { error: err })
      );
    }
  }

  async #handle(conn: Deno.TcpConn): Promise<void> {
    const client = new ConnDuplex(conn);
    this.#conns.add(client);
    const timer = setTimeout(() => client.close(), this.options.handshakeTimeoutMs ?? 10_000);
    let upstream: Duplex | undefined;
    try {
      let target: Socks5Target;
      try {
        target = await this.#handshake(conn);
      } catch (err) {
        if (err instanceof HandshakeError) {
          this.#errors.inc({ rep: err.rep });
          this.deps.logger.debug("socks5 request refused", { error: err.message });
          if (err.rep !== REP.failure || !/closed/.test(err.message)) {
            await reply(conn, err.rep).catch(() => {});
          }
          return;
        }
        throw err;
      }
      try {
        upstream = await this.#connect(target);
      } catch (err) {
        const rep = err instanceof DialError
          ? (err.code === "refused"
            ? REP.refused
            : err.code === "forbidden"
            ? REP.notAllowed
            : REP.hostUnreachable)
          : err instanceof Deno.errors.ConnectionRefused
          ? REP.refused
          : REP.hostUnreachable;
        this.#errors.inc({ rep });
        this.deps.logger.debug("socks5 connect failed", { target, error: err });
        await reply(conn, rep).catch(() => {});
        return;
      }
      clearTimeout(timer);
      this.#connections.inc({ kind: target.kind });
      await reply(conn, REP.ok);
      this.#conns.add(upstream);
      await relay(client, upstream, {
        bufferBytes: 65536,
        idleTimeoutMs: this.options.tcpIdleTimeoutMs,
        signal: this.#abort.signal,
      });
    } catch (err) {
      if (!isConnectionError(err)) throw err;
    } finally {
      clearTimeout(timer);
      client.close();
      upstream?.close();
      this.#conns.delete(client);
      if (upstream) this.#conns.delete(upstream);
    }
  }

  async #handshake(conn: Deno.Conn): Promise<Socks5Target> {
    const [ver, nmethods] = await readN(conn, 2);
    if (ver !== 5) {
      throw new HandshakeError(REP.failure, `not SOCKS5 (version byte ${ver}); closed`);
    }
    const methods = await readN(conn, nmethods);
    if (!methods.includes(0)) {
      await conn.write(new Uint8Array([5, 0xff]));
      throw new HandshakeError(
        REP.notAllowed,
        "client offers no method without authentication; closed",
      );
    }
    await conn.write(new Uint8Array([5, 0]));
    const [v2, cmd, _rsv, atyp] = await readN(conn, 4);
    if (v2 !== 5) throw new HandshakeError(REP.failure, `bad request version ${v2}; closed`);
    let host: string;
    if (atyp === 1) host = [...await readN(conn, 4)].join(".");
    else if (atyp === 3) {
      const [len] = await readN(conn, 1);
      host = new TextDecoder().decode(await readN(conn, len));
    } else if (atyp === 4) {
      const b = await readN(conn, 16);
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
      host = groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
    } else throw new HandshakeError(REP.addressTypeNotSupported, `address type ${atyp}`);
    const pb = await readN(conn, 2);
    const port = (pb[0] << 8) | pb[1];
    if (cmd !== 1) {
      throw new HandshakeError(REP.commandNotSupported, `command ${cmd} (only CONNECT)`);
    }
    const target = resolveSocksTarget(host, port, this.deps, this.options.clusterDomain);
    if (!target) {
      throw new HandshakeError(REP.hostUnreachable, `"${host}" is neither a service nor a node`);
    }
    return target;
  }

  async #connect(t: Socks5Target): Promise<Duplex> {
    const timeoutMs = this.options.connectTimeoutMs ?? 5000;
    if (t.kind === "service") {
      const l = this.deps.serviceListener(t.namespace, t.name, t.port);
      if (!l) {
        throw new DialError("unreachable", {
          node: this.options.nodeName,
          ip: t.name,
          port: t.port,
          protocol: "tcp",
        }, "no such service port");
      }
      return new ConnDuplex(await Deno.connect({ hostname: l.hostname, port: l.port }));
    }
    if (t.node === this.options.nodeName) {
      return new ConnDuplex(await Deno.connect({ hostname: t.ip, port: t.port }));
    }
    const s: ByteStream = await this.deps.dialer.dialStream(
      { node: t.node, ip: t.ip, port: t.port, protocol: "tcp" },
      { signal: this.#abort.signal, timeoutMs },
    );
    return new StreamDuplex(s);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    try {
      this.#listener?.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
    this.#listener = undefined;
    for (const c of this.#conns) c.close();
    await this.#serving;
    this.#conns.clear();
    this.#state = { state: "stopped", detail: "" };
  }

  status(): ServiceStatus {
    return this.#state;
  }
}

async function reply(conn: Deno.Conn, rep: number): Promise<void> {
  // BND.ADDR 0.0.0.0:0: clients do not use it for CONNECT.
  const msg = new Uint8Array([5, rep, 0, 1, 0, 0, 0, 0, 0, 0]);
  let off = 0;
  while (off < msg.length) off += await conn.write(msg.subarray(off));
}
