/**
 * The private-network connection protector (libp2p "pnet" v1 wire format: each side sends a
 * random 24-byte nonce, then every byte each way is XORed with an XSalsa20 keystream keyed by
 * the PSK and the sender's nonce).
 *
 * Why not `@libp2p/pnet`: its cipher, the `xsalsa20` npm package, keeps every instance on one
 * shared WebAssembly memory; when one instance grows it, the others keep a stale view and
 * grow it again, until `WebAssembly.Memory.grow()` fails after some tens of MB and the
 * connection is aborted — every long transfer between nodes died that way. This protector
 * speaks the same wire format (peers running @libp2p/pnet interoperate; a test proves it)
 * with `@noble/ciphers`' pure-JS XSalsa20 and a streaming wrapper that keeps its own
 * position in the keystream.
 */

import type { ConnectionProtector, MultiaddrConnection } from "@libp2p/interface";
import { InvalidParametersError } from "@libp2p/interface";
import { AbstractMultiaddrConnection, byteStream } from "@libp2p/utils";
import { xsalsa20 } from "@noble/ciphers/salsa.js";

const NONCE_LENGTH = 24;
const KEY_LENGTH = 32;
const BLOCK = 64;
const ZERO_BLOCK = new Uint8Array(BLOCK);

/** An XSalsa20 keystream XORed over a byte stream delivered in chunks of any size. */
export class XSalsa20Stream {
  #counter = 0;
  #ks = new Uint8Array(BLOCK);
  #used = BLOCK;

  constructor(private readonly key: Uint8Array, private readonly nonce: Uint8Array) {
    if (key.length !== KEY_LENGTH) throw new RangeError(`XSalsa20 key must be ${KEY_LENGTH} bytes`);
    if (nonce.length !== NONCE_LENGTH) {
      throw new RangeError(`XSalsa20 nonce must be ${NONCE_LENGTH} bytes`);
    }
  }

  update(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(data.length);
    let i = 0;
    while (i < data.length && this.#used < BLOCK) out[i] = data[i++] ^ this.#ks[this.#used++];
    const whole = Math.floor((data.length - i) / BLOCK) * BLOCK;
    if (whole > 0) {
      xsalsa20(
        this.key,
        this.nonce,
        data.subarray(i, i + whole),
        out.subarray(i, i + whole),
        this.#counter,
      );
      this.#counter += whole / BLOCK;
      i += whole;
    }
    if (i < data.length) {
      xsalsa20(this.key, this.nonce, ZERO_BLOCK, this.#ks, this.#counter++);
      this.#used = 0;
      while (i < data.length) out[i] = data[i++] ^ this.#ks[this.#used++];
    }
    return out;
  }
}

interface BoxInit {
  maConn: MultiaddrConnection;
  psk: Uint8Array;
  localNonce: Uint8Array;
  remoteNonce: Uint8Array;
  // deno-lint-ignore no-explicit-any -- libp2p's logger type
  log: any;
}

/** The encrypted connection handed on to the security upgrade (Noise). */
class BoxedConnection extends AbstractMultiaddrConnection {
  readonly #inbound: XSalsa20Stream;
  readonly #outbound: XSalsa20Stream;
  readonly #maConn: MultiaddrConnection;

  constructor(init: BoxInit) {
    super({ ...init, remoteAddr: init.maConn.remoteAddr, direction: init.maConn.direction });
    this.#inbound = new XSalsa20Stream(init.psk, init.remoteNonce);
    this.#outbound = new XSalsa20Stream(init.psk, init.localNonce);
    this.#maConn = init.maConn;
    this.#maConn.addEventListener("message", (evt) => {
      const data = evt.data;
      if (data instanceof Uint8Array) this.onData(this.#inbound.update(data));
      else for (const buf of data) this.onData(this.#inbound.update(buf));
    });
    this.#maConn.addEventListener("drain", () => this.onMuxerDrain());
    this.#maConn.addEventListener("close", (evt) => {
      if (evt.error != null) {
        if (evt.local) this.abort(evt.error);
        else this.onRemoteReset();
      } else this.onTransportClosed();
    });
  }

  async sendClose(options?: { signal?: AbortSignal }): Promise<void> {
    await this.#maConn.close(options);
  }

  sendData(
    data: { subarray(): Uint8Array; byteLength: number },
  ): { sentBytes: number; canSendMore: boolean } {
    return {
      sentBytes: data.byteLength,
      canSendMore: this.#maConn.send(this.#outbound.update(data.subarray())),
    };
  }

  sendReset(err: Error): void {
    this.#maConn.abort(err);
  }

  sendPause(): void {
    this.#maConn.pause();
  }

  sendResume(): void {
    this.#maConn.resume();
  }
}

class PskProtector implements ConnectionProtector {
  readonly [Symbol.toStringTag] = "@edgemesh/pnet";
  constructor(private readonly key: Uint8Array, private readonly timeoutMs: number) {}

  async protect(
    connection: MultiaddrConnection,
    options?: { signal?: AbortSignal },
  ): Promise<MultiaddrConnection> {
    if (connection == null) {
      throw new InvalidParametersError("No connection for the handshake provided");
    }
    const log = connection.log.newScope("pnet");
    const localNonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
    const opts = options?.signal ? options : { signal: AbortSignal.timeout(this.timeoutMs) };
    const bytes = byteStream(connection);
    const [remote] = await Promise.all([
      bytes.read({ bytes: NONCE_LENGTH, ...opts }),
      bytes.write(localNonce, opts),
    ]);
    return new BoxedConnection({
      maConn: bytes.unwrap() as MultiaddrConnection,
      psk: this.key,
      localNonce,
      remoteNonce: remote.subarray(),
      log,
    });
  }
}

/** `connectionProtector` for createLibp2p: `key` is the 32-byte network key. */
export function pskProtector(key: Uint8Array, timeoutMs = 5000): () => ConnectionProtector {
  if (key.length !== KEY_LENGTH) {
    throw new RangeError(`the network key must be ${KEY_LENGTH} bytes`);
  }
  return () => new PskProtector(key, timeoutMs);
}

/** The 32-byte network key derived from the PSK file's bytes (SHA-256, as before). */
export async function networkKey(psk: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", psk as Uint8Array<ArrayBuffer>));
}
