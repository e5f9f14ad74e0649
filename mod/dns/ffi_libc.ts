/**
 * The libc calls of the batched UDP path, through `Deno.dlopen` (Linux, LP64: x86_64 and
 * aarch64 share these struct layouts): socket, setsockopt (SO_REUSEPORT, SO_RCVTIMEO), bind,
 * getsockname, recvmmsg, sendmmsg, sendto, close, and errno.
 */

import { expandIPv6, isIPv4 } from "./options.ts";

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;

export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOL_SOCKET = 1;
const SO_REUSEPORT = 15;
const SO_RCVTIMEO = 20;
export const MSG_WAITFORONE = 0x10000;
export const EAGAIN = 11;
export const EINTR = 4;

/** Sizes of the LP64 structs. */
export const SIZEOF_IOVEC = 16;
export const SIZEOF_MMSGHDR = 64;
export const SIZEOF_SOCKADDR_STORAGE = 128;

/** True where the batched path can run: Linux x86_64/aarch64 with --allow-ffi granted. */
export function batchedPathAvailable(): boolean {
  if (
    Deno.build.os !== "linux" || (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64")
  ) return false;
  return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
}

export function openLibc(): Libc {
  const candidates = [
    "libc.so.6",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/aarch64-linux-gnu/libc.so.6",
  ];
  let last: unknown;
  for (const path of candidates) {
    try {
      return Deno.dlopen(path, SYMBOLS);
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`cannot load libc for the batched DNS path: ${(last as Error)?.message ?? last}`);
}

export function errno(libc: Libc): number {
  const p = libc.symbols.__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

const ERRNO_TEXT: Record<number, string> = {
  13: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
  98: "address already in use",
  99:
    "address not available on this host (set modules.edgeDNS.listenAddress to an address of this host)",
  97: "address family not supported",
};

export function errnoText(code: number): string {
  return ERRNO_TEXT[code] ?? `errno ${code}`;
}

/** A sockaddr_in / sockaddr_in6 for an IP and port. */
export function sockaddr(ip: string, port: number): Uint8Array {
  if (isIPv4(ip)) {
    const b = new Uint8Array(16);
    b[0] = AF_INET; // sa_family is host order (little endian on both supported arches)
    b[2] = port >> 8;
    b[3] = port & 0xff;
    ip.split(".").forEach((x, i) => (b[4 + i] = Number(x)));
    return b;
  }
  const g = expandIPv6(ip);
  if (!g) throw new Error(`not an IP address: ${ip}`);
  const b = new Uint8Array(28);
  b[0] = AF_INET6;
  b[2] = port >> 8;
  b[3] = port & 0xff;
  g.forEach((x, i) => {
    b[8 + i * 2] = x >> 8;
    b[9 + i * 2] = x & 0xff;
  });
  return b;
}

/**
 * Binds a UDP socket with SO_REUSEPORT (so more receivers can share the port; not
 * SO_REUSEADDR, which would let unrelated sockets steal unicast datagrams) and a receive
 * timeout (so a blocked receiver notices a stop request); returns fd and bound port.
 */
export function bindUdp(
  libc: Libc,
  ip: string,
  port: number,
  recvTimeoutMs: number,
): { fd: number; port: number } {
  const addr = sockaddr(ip, port);
  const fd = libc.symbols.socket(addr[0], SOCK_DGRAM, 0);
  if (fd < 0) throw new BindFailure(errno(libc));
  const one = new Int32Array([1]);
  const tv = new BigInt64Array([
    BigInt(Math.floor(recvTimeoutMs / 1000)),
    BigInt((recvTimeoutMs % 1000) * 1000),
  ]);
  const fail = () => {
    const code = errno(libc);
    libc.symbols.close(fd);
    return new BindFailure(code);
  };
  if (libc.symbols.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) < 0) throw fail();
  if (libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) < 0) throw fail();
  if (libc.symbols.bind(fd, addr, addr.length) < 0) throw fail();
  const out = new Uint8Array(SIZEOF_SOCKADDR_STORAGE);
  const len = new Uint32Array([out.length]);
  if (libc.symbols.getsockname(fd, out, len) < 0) throw fail();
  return { fd, port: (out[2] << 8) | out[3] };
}

export class BindFailure extends Error {
  override name = "BindFailure";
  constructor(readonly errno: number) {
    super(errnoText(errno));
  }
}

/** The address in a sockaddr as text (for logs and tests). */
export function sockaddrText(b: Uint8Array): string {
  const port = (b[2] << 8) | b[3];
  if (b[0] === AF_INET) return `${b[4]}.${b[5]}.${b[6]}.${b[7]}:${port}`;
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(((b[8 + i * 2] << 8) | b[9 + i * 2]).toString(16));
  return `[${groups.join(":")}]:${port}`;
}
