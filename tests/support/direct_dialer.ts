/**
 * An in-process `Dialer` for proxy tests before the tunnel exists: it connects straight to
 * the target ip:port with the kernel but reports the path "tunnel-relay" (relay "relay-test"),
 * records every dial, and can be told to fail targets.
 */

import {
  type ByteStream,
  type DatagramChannel,
  type Dialer,
  DialError,
  type DialErrorCode,
  type DialOptions,
  type DialTarget,
} from "../../mod/contracts/mod.ts";

export class DirectDialer implements Dialer {
  readonly dials: DialTarget[] = [];
  /** "ip:port" → error code to fail with. */
  readonly failures = new Map<string, DialErrorCode>();

  async dialStream(
    target: DialTarget & { protocol: "tcp" },
    options?: DialOptions,
  ): Promise<ByteStream> {
    this.dials.push(target);
    this.#maybeFail(target);
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: target.ip, port: target.port });
    } catch (err) {
      if (err instanceof Deno.errors.ConnectionRefused) {
        throw new DialError("refused", target, "refused", { cause: err });
      }
      throw new DialError("unreachable", target, String(err), { cause: err });
    }
    options?.signal?.throwIfAborted();
    return {
      readable: conn.readable,
      writable: conn.writable,
      closeWrite: () => conn.closeWrite(),
      close: () => {
        try {
          conn.close();
        } catch (err) {
          if (!(err instanceof Deno.errors.BadResource)) throw err;
        }
      },
      path: "tunnel-relay",
      relay: "relay-test",
    };
  }

  dialDatagram(target: DialTarget & { protocol: "udp" }): Promise<DatagramChannel> {
    this.dials.push(target);
    this.#maybeFail(target);
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    let closed = false;
    return Promise.resolve({
      path: "tunnel-relay" as const,
      relay: "relay-test",
      send: async (d: Uint8Array) => {
        await sock.send(d, { transport: "udp", hostname: target.ip, port: target.port });
      },
      receive: async () => {
        if (closed) return null;
        try {
          const [d] = await sock.receive();
          return d;
        } catch (err) {
          if (
            closed || err instanceof Deno.errors.BadResource ||
            err instanceof Deno.errors.Interrupted
          ) return null;
          throw err;
        }
      },
      close: () => {
        if (closed) return;
        closed = true;
        sock.close();
      },
    });
  }

  #maybeFail(target: DialTarget): void {
    const code = this.failures.get(`${target.ip}:${target.port}`);
    if (code) throw new DialError(code, target, `test failure ${code}`);
  }
}
