/** A fake tunnel for health tests: routes a node to a port on 127.0.0.1, counts open streams. */

import type { ByteStream, Dialer, DialTarget } from "../contracts/mod.ts";
import { DialError } from "../contracts/mod.ts";

/** The tunnel, faked: node name → the member's real server, if the target is allowed there. */
export class FakeTunnel implements Dialer {
  readonly dials: DialTarget[] = [];
  open = 0;
  constructor(
    private readonly realPort: (node: string) => number | undefined,
    /** What the member's own tunnel lets in (its health address and listen port). */
    private readonly allowed: (node: string, ip: string, port: number) => boolean,
  ) {}

  async dialStream(target: DialTarget & { protocol: "tcp" }): Promise<ByteStream> {
    this.dials.push(target);
    const port = this.realPort(target.node);
    if (port === undefined) throw new DialError("unreachable", target, "no such peer");
    if (!this.allowed(target.node, target.ip, target.port)) {
      throw new DialError("forbidden", target, "target not allowed by the peer");
    }
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
    } catch (err) {
      throw new DialError("refused", target, String(err), { cause: err });
    }
    this.open++;
    let closed = false;
    return {
      readable: conn.readable,
      writable: conn.writable,
      closeWrite: () => conn.closeWrite(),
      close: () => {
        if (closed) return;
        closed = true;
        this.open--;
        try {
          conn.close();
        } catch (err) {
          if (!(err instanceof Deno.errors.BadResource)) throw err;
        }
      },
      path: "tunnel-relay",
      relay: "r1",
    };
  }

  dialDatagram(): never {
    throw new Error("not used");
  }
}
