/** Builds a ServiceProxy over a fresh store, catalog, registry and DirectDialer for tests. */

import { UNKNOWN_HEALTH } from "../../mod/contracts/mod.ts";
import { ClusterStore, StoreCatalog } from "../../mod/kube/mod.ts";
import { type Logger, nullLogger } from "../../mod/log/mod.ts";
import { Registry } from "../../mod/metrics/mod.ts";
import { type ProxyOptions, ServiceProxy } from "../../mod/proxy/mod.ts";
import { DirectDialer } from "./direct_dialer.ts";
import { waitFor } from "./wait.ts";

export interface Harness {
  store: ClusterStore;
  dialer: DirectDialer;
  metrics: Registry;
  proxy: ServiceProxy;
  /** Waits until the service port has a listener; returns its port on 127.0.0.1. */
  listener(
    name: string,
    port: number,
    protocol?: "tcp" | "udp",
    namespace?: string,
  ): Promise<number>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startProxy(
  options: Partial<ProxyOptions> = {},
  deps: { logger?: Logger; random?: () => number } = {},
): Promise<Harness> {
  const store = new ClusterStore();
  const catalog = new StoreCatalog(store);
  const dialer = new DirectDialer();
  const metrics = new Registry();
  const proxy = new ServiceProxy(
    {
      logger: deps.logger ?? nullLogger(),
      metrics,
      catalog,
      store,
      dialer,
      health: UNKNOWN_HEALTH,
      random: deps.random,
    },
    { nodeName: "n1", listenAddress: "127.0.0.1", drainTimeoutMs: 200, ...options },
  );
  await proxy.start(new AbortController().signal);
  return {
    store,
    dialer,
    metrics,
    proxy,
    listener: async (name, port, protocol = "tcp", namespace = "default") =>
      (await waitFor(
        () => proxy.listenerFor(namespace, name, port, protocol),
        `listener of ${name}:${port}`,
      )).port,
    [Symbol.asyncDispose]: () => proxy.stop(),
  };
}

/** Reads everything until EOF. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
