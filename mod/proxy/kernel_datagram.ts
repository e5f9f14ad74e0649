/** A `DatagramChannel` over a kernel UDP socket talking to one endpoint (local and lan paths). */

import type { DatagramChannel, PathKind } from "../contracts/mod.ts";

export class KernelDatagramChannel implements DatagramChannel {
  #buf = new Uint8Array(65536);
  #closed = false;

  private constructor(
    private readonly sock: Deno.DatagramConn,
    private readonly ip: string,
    private readonly port: number,
    readonly path: PathKind,
  ) {}

  /** Binds an ephemeral socket of the endpoint's address family. */
  static open(ip: string, port: number, path: PathKind): KernelDatagramChannel {
    const loopback = ip === "127.0.0.1" || ip === "::1";
    const hostname = ip.includes(":")
      ? (loopback ? "::1" : "::")
      : (loopback ? "127.0.0.1" : "0.0.0.0");
    const sock = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
    return new KernelDatagramChannel(sock, ip, port, path);
  }

  async send(datagram: Uint8Array): Promise<void> {
    await this.sock.send(datagram, { transport: "udp", hostname: this.ip, port: this.port });
  }

  /**
   * The next datagram from the endpoint (others are dropped). The returned bytes live in a
   * reused buffer: valid until the next `receive()`.
   */
  async receive(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#closed) return null;
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await this.sock.receive(this.#buf);
      } catch (err) {
        if (
          this.#closed || err instanceof Deno.errors.BadResource ||
          err instanceof Deno.errors.Interrupted
        ) {
          return null;
        }
        throw err;
      }
      const a = got[1] as Deno.NetAddr;
      if (a.port === this.port && sameIp(a.hostname, this.ip)) return got[0];
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.sock.close();
  }
}

function sameIp(a: string, b: string): boolean {
  return a === b || a.replace(/^::ffff:/, "") === b.replace(/^::ffff:/, "");
}
