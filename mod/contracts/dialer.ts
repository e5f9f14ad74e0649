/**
 * The Dialer: how proxy, gateway and SOCKS5 reach an endpoint on another node. The tunnel
 * implements it; tests use an in-process implementation.
 */

/** How a connection travelled (the same words in status, metrics and logs). */
export type PathKind = "local" | "lan" | "tunnel-direct" | "tunnel-relay";

export interface DialTarget {
  /** Node that hosts the endpoint. */
  node: string;
  ip: string;
  port: number;
  protocol: "tcp" | "udp";
}

export interface DialOptions {
  signal?: AbortSignal;
  /** Default 5000 ms. */
  timeoutMs?: number;
}

/** A full-duplex byte stream. `closeWrite()` half-closes (FIN); `close()` ends both ways. */
export interface ByteStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  closeWrite(): Promise<void>;
  close(): void;
  readonly path: PathKind;
  /** Relay node name when `path` is "tunnel-relay". */
  readonly relay?: string;
}

/** A channel that preserves datagram boundaries. */
export interface DatagramChannel {
  send(datagram: Uint8Array): Promise<void>;
  /** Resolves with the next datagram, or null when the channel closed. */
  receive(): Promise<Uint8Array | null>;
  close(): void;
  readonly path: PathKind;
  readonly relay?: string;
}

export type DialErrorCode = "unreachable" | "refused" | "timeout" | "forbidden" | "protocol";

export class DialError extends Error {
  override name = "DialError";
  constructor(
    readonly code: DialErrorCode,
    readonly target: DialTarget,
    message: string,
    options?: ErrorOptions,
  ) {
    super(
      `Cannot reach ${target.protocol}://${target.ip}:${target.port} on node "${target.node}": ${message}`,
      options,
    );
  }
  /** unreachable, refused and timeout may succeed on another endpoint. */
  get retryable(): boolean {
    return this.code === "unreachable" || this.code === "refused" || this.code === "timeout";
  }
}

export interface Dialer {
  dialStream(target: DialTarget & { protocol: "tcp" }, options?: DialOptions): Promise<ByteStream>;
  dialDatagram(
    target: DialTarget & { protocol: "udp" },
    options?: DialOptions,
  ): Promise<DatagramChannel>;
}
