/** One libp2p ping (`/ipfs/ping/1.0.0`: 32 random bytes echoed) on a given connection. */

import type { Connection } from "@libp2p/interface";
import { WireError } from "./errors.ts";
import { closeStream, StreamReader } from "./stream_io.ts";

export const PING_PROTOCOL = "/ipfs/ping/1.0.0";

/** Round-trip time in milliseconds. */
export async function pingOn(conn: Connection, signal: AbortSignal): Promise<number> {
  const stream = await conn.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true });
  const reader = new StreamReader(stream);
  try {
    const data = crypto.getRandomValues(new Uint8Array(32));
    const t0 = performance.now();
    stream.send(data);
    const back = await reader.readExactly(32, signal);
    const rtt = performance.now() - t0;
    if (!back.every((b, i) => b === data[i])) throw new WireError("ping answer does not match");
    return rtt;
  } finally {
    reader.detach();
    await closeStream(stream, 500);
  }
}
