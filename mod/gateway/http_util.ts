/** Small HTTP helpers shared by the request loop and forwarding. */

import { type HeaderList, reasonPhrase, serializeHead } from "./http1.ts";
import type { Wire } from "./wire.ts";

/** Writes a short text/plain answer; returns `keepAlive`. */
export async function respond(
  client: Wire,
  status: number,
  text: string,
  keepAlive: boolean,
  extra: HeaderList = [],
): Promise<boolean> {
  const body = new TextEncoder().encode(text + "\n");
  const headers: HeaderList = [
    ["Content-Type", "text/plain; charset=utf-8"],
    ["Content-Length", String(body.length)],
    ...extra,
  ];
  if (!keepAlive) headers.push(["Connection", "close"]);
  await client.write(
    concat(serializeHead(`HTTP/1.1 ${status} ${reasonPhrase(status)}`, headers), body),
  );
  return keepAlive;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export function isTimeout(err: unknown): boolean {
  return err instanceof DOMException && (err.name === "TimeoutError" || err.name === "AbortError");
}
