/**
 * Listening sockets: plain TCP (HTTP, TCP, TLS passthrough) with Deno.listen, and TLS
 * termination with node:tls (per-handshake credentials through SNICallback; client
 * certificates requested for MUTUAL and verified against ca.crt here).
 */

import type { Server as NetServer } from "node:net";
import tls from "node:tls";
import { BindError } from "./errors.ts";
import type { ServerModel } from "./model.ts";
import type { Credential } from "./tls_credentials.ts";
import { peerChain, verifyClientChain } from "./tls_credentials.ts";
import { type Wire, wireFromConn, wireFromSocket } from "./wire.ts";
import type { CredentialError } from "./errors.ts";

export interface Accepted {
  wire: Wire;
  remoteIp: string;
  /** TLS only: the server chosen by SNI. */
  server?: ServerModel;
}

export interface BoundListener {
  readonly address: string;
  readonly port: number;
  /** What requires a new socket when it changes (kind, client certificate requests). */
  readonly signature: string;
  /** Stops accepting; open connections are left to their owners. */
  close(): Promise<void>;
}

export function bindPlain(
  address: string,
  port: number,
  signature: string,
  onConn: (a: Accepted) => void,
  onError: (err: unknown) => void,
): BoundListener {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: address, port, transport: "tcp" });
  } catch (err) {
    throw new BindError(address, port, { cause: err });
  }
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        onConn({ wire: wireFromConn(conn), remoteIp: (conn.remoteAddr as Deno.NetAddr).hostname });
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted)) {
        onError(err);
      }
    }
  })();
  let closed = false;
  return {
    address,
    port,
    signature,
    async close() {
      if (closed) return;
      closed = true;
      try {
        listener.close();
      } catch (err) {
        if (!(err instanceof Deno.errors.BadResource)) throw err;
      }
      await loop;
    },
  };
}

export interface TlsHooks {
  /** The server a handshake belongs to, by SNI ("" when none was sent). */
  serverFor(sni: string): ServerModel | undefined;
  credential(server: ServerModel): Credential | CredentialError;
  onConn(a: Accepted): void;
  /** A refused handshake or client certificate (logged and counted by the caller). */
  onTlsError(reason: string, detail: string): void;
  handshakeTimeoutMs: number;
}

export async function bindTls(
  address: string,
  port: number,
  signature: string,
  requestCert: boolean,
  hooks: TlsHooks,
): Promise<BoundListener> {
  const server = tls.createServer({
    // Half-close: a client's end of stream must not end our direction (TCP over TLS).
    allowHalfOpen: true,
    requestCert,
    // Chains are verified in verifyClientChain: node's own check is not reliable here.
    rejectUnauthorized: false,
    handshakeTimeout: hooks.handshakeTimeoutMs,
    SNICallback: (name, cb) => {
      const s = hooks.serverFor((name ?? "").toLowerCase());
      if (!s) return cb(new Error(`no server for SNI "${name}"`), undefined);
      const cred = hooks.credential(s);
      if ("context" in cred) cb(null, cred.context);
      else cb(cred, undefined);
    },
  });
  server.on("secureConnection", (sock: tls.TLSSocket) => {
    const name = (sock as tls.TLSSocket & { servername?: unknown }).servername;
    const sni = typeof name === "string" ? name.toLowerCase() : "";
    const s = hooks.serverFor(sni);
    const remoteIp = sock.remoteAddress ?? "";
    if (!s) {
      sock.destroy();
      return;
    }
    if (s.tls?.mode === "MUTUAL") {
      const cred = hooks.credential(s);
      const why = "cas" in cred ? verifyClientChain(peerChain(sock), cred.cas) : cred.message;
      if (why) {
        hooks.onTlsError("client_certificate", `${remoteIp}: ${why}`);
        sock.destroy();
        return;
      }
    }
    hooks.onConn({ wire: wireFromSocket(sock), remoteIp, server: s });
  });
  server.on("tlsClientError", (err: Error) => hooks.onTlsError("handshake", err.message));
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new BindError(address, port, { cause: err }));
    server.once("error", onError);
    server.listen(port, address, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (err: Error) => hooks.onTlsError("listener", err.message));
  let closed = false;
  return {
    address,
    port,
    signature,
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      (server as NetServer).close();
      return Promise.resolve();
    },
  };
}
