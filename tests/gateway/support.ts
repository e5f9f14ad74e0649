/**
 * Fixtures for the gateway tests: a ClusterStore filled like EdgeMesh's gateway examples,
 * HTTP backends on 127.0.0.1, a Dialer that connects in-process but reports "tunnel-relay",
 * and curl/openssl helpers.
 */

import {
  type ByteStream,
  type Dialer,
  DialError,
  UNKNOWN_HEALTH,
} from "../../mod/contracts/mod.ts";
import { ClusterStore, type KubeObject, StoreCatalog } from "../../mod/kube/mod.ts";
import { type Logger, memoryLogger } from "../../mod/log/mod.ts";
import { Registry } from "../../mod/metrics/mod.ts";
import { type GatewayOptions, GatewayService, type PickerFactory } from "../../mod/gateway/mod.ts";
import { TestPki } from "../support/pki.ts";

export const NS = `gw-test-${Deno.pid}`;
export const NODE = `gw-node-${Deno.pid}`;
export const REMOTE_NODE = `remote-node-${Deno.pid}`;

/**
 * A port that was free a moment ago (the Gateway resource must name its port). Chosen below
 * the kernel's ephemeral range (32768+), so outgoing connections of parallel tests cannot
 * take it between this check and the gateway's bind.
 */
export function freePort(): number {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    try {
      const l = Deno.listen({ hostname: "127.0.0.1", port });
      l.close();
      return port;
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    }
  }
  throw new Error("no free port found in 20000-31999");
}

export interface Backend {
  name: string;
  port: number;
  hits: number;
  close(): Promise<void>;
}

/**
 * An HTTP backend answering `name` (plain text), with helpers:
 * `/slow?ms=N` waits N ms, `/echo` returns the request body length and selected headers as JSON,
 * `/ws` echoes WebSocket messages prefixed by the backend name.
 */
export function startBackend(name: string): Backend {
  const ac = new AbortController();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const b: Backend = {
    name,
    port: 0,
    hits: 0,
    async close() {
      for (const t of timers) clearTimeout(t);
      ac.abort();
      await server.finished;
    },
  };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: () => {},
  }, async (req) => {
    b.hits++;
    const url = new URL(req.url);
    if (url.pathname === "/ws") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`${name}:${e.data}`);
      return response;
    }
    if (url.pathname.startsWith("/slow")) {
      const ms = Number(url.searchParams.get("ms") ?? "1000");
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          timers.delete(t);
          resolve();
        }, ms);
        timers.add(t);
      });
    }
    if (url.pathname.startsWith("/drip")) {
      // The head and a first piece at once, the rest after `ms`.
      const ms = Number(url.searchParams.get("ms") ?? "1000");
      const enc = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode(`${name} first\n`));
          const t = setTimeout(() => {
            timers.delete(t);
            try {
              c.enqueue(enc.encode(`${name} rest\n`));
              c.close();
            } catch { /* the reader went away */ }
          }, ms);
          timers.add(t);
        },
      });
      return new Response(body, { headers: { "x-backend": name } });
    }
    if (url.pathname.startsWith("/echo")) {
      let n = 0;
      if (req.body) { for await (const c of req.body) n += c.length; }
      const h: Record<string, string> = {};
      for (const [k, v] of req.headers) h[k] = v;
      return Response.json({ name, path: url.pathname + url.search, bodyLength: n, headers: h });
    }
    if (url.pathname.startsWith("/status/")) {
      return new Response(name, { status: Number(url.pathname.slice(8)) });
    }
    return new Response(`${name} ${url.pathname}${url.search}`, { headers: { "x-backend": name } });
  });
  b.port = server.addr.port;
  return b;
}

/** A Dialer that connects straight to the target but reports the relay path, and counts. */
export class LoopbackDialer implements Dialer {
  dials: string[] = [];
  async dialStream(
    target: { node: string; ip: string; port: number; protocol: "tcp" },
  ): Promise<ByteStream> {
    this.dials.push(`${target.node}/${target.ip}:${target.port}`);
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: target.ip, port: target.port });
    } catch (err) {
      throw new DialError("refused", target, String(err), { cause: err });
    }
    return {
      readable: conn.readable,
      writable: new WritableStream({ write: async (c) => void await conn.write(c) }),
      closeWrite: () => conn.closeWrite(),
      close: () => {
        try {
          conn.close();
        } catch (err) {
          if (!(err instanceof Deno.errors.BadResource)) throw err;
        }
      },
      path: "tunnel-relay",
      relay: "relay-1",
    };
  }
  dialDatagram(): never {
    throw new Error("not used");
  }
}

export function service(name: string, port = 12345, ns = NS): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: ns },
    spec: {
      selector: { app: name },
      ports: [{ name: "http-0", port, protocol: "TCP", targetPort: 9376 }],
    },
  } as KubeObject;
}

/** One EndpointSlice per backend (each listens on its own port of 127.0.0.1). */
export function slice(
  svc: string,
  backend: { name: string; port: number },
  node: string,
  ns = NS,
): KubeObject {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${svc}-${backend.name}`,
      namespace: ns,
      labels: { "kubernetes.io/service-name": svc },
    },
    addressType: "IPv4",
    endpoints: [{
      addresses: ["127.0.0.1"],
      conditions: { ready: true },
      nodeName: node,
      targetRef: { kind: "Pod", name: backend.name, namespace: ns },
    }],
    ports: [{ name: "http-0", port: backend.port, protocol: "TCP" }],
  } as KubeObject;
}

export function pod(
  name: string,
  labels: Record<string, string>,
  node: string,
  ns = NS,
): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels },
    spec: { nodeName: node },
    status: { phase: "Running" },
  } as KubeObject;
}

export function gateway(
  name: string,
  servers: unknown[],
  selector: Record<string, string> = { kubeedge: "edgemesh-gateway" },
  ns = NS,
) {
  return {
    apiVersion: "networking.istio.io/v1alpha3",
    kind: "Gateway",
    metadata: { name, namespace: ns },
    spec: { selector, servers },
  } as KubeObject;
}

export function virtualService(
  name: string,
  spec: Record<string, unknown>,
  ns = NS,
  resourceVersion?: string,
) {
  return {
    apiVersion: "networking.istio.io/v1alpha3",
    kind: "VirtualService",
    metadata: { name, namespace: ns, resourceVersion },
    spec,
  } as KubeObject;
}

export function put(store: ClusterStore, ...objs: KubeObject[]): void {
  const plural: Record<string, string> = {
    Service: "services",
    EndpointSlice: "endpointslices",
    Pod: "pods",
    Gateway: "gateways",
    VirtualService: "virtualservices",
    DestinationRule: "destinationrules",
    Secret: "secrets",
    Node: "nodes",
  };
  store.batch(() => {
    for (const o of objs) store.upsert(plural[o.kind!] as "services", o as never);
  });
}

export interface Harness {
  store: ClusterStore;
  dialer: LoopbackDialer;
  gw: GatewayService;
  log: Logger;
  lines: Record<string, unknown>[];
  metrics: Registry;
  start(): Promise<void>;
  close(): Promise<void>;
}

export function harness(options: Partial<GatewayOptions> = {}, pickers?: PickerFactory): Harness {
  const store = new ClusterStore();
  const dialer = new LoopbackDialer();
  const { logger, lines } = memoryLogger("debug");
  const metrics = new Registry();
  const gw = new GatewayService(
    {
      logger,
      metrics,
      store,
      catalog: new StoreCatalog(store),
      dialer,
      health: UNKNOWN_HEALTH,
      pickers,
    },
    {
      nodeName: NODE,
      nodeLabels: { kubeedge: "edgemesh-gateway" },
      bindAddresses: ["127.0.0.1"],
      ...options,
    },
  );
  return {
    store,
    dialer,
    gw,
    log: logger,
    lines,
    metrics,
    start: () => gw.start(new AbortController().signal),
    close: () => gw.stop(),
  };
}

export interface CurlResult {
  code: number;
  status: number;
  body: string;
  stderr: string;
}

/** Runs curl; `-w` appends the status code on a last line, which is split off. */
export async function curl(...args: string[]): Promise<CurlResult> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "10", "-w", "\n%{http_code}", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const nl = text.lastIndexOf("\n");
  return {
    code: out.code,
    status: Number(text.slice(nl + 1)),
    body: text.slice(0, nl),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Polls `fn` until it returns true or the deadline passes. */
export async function waitFor(
  fn: () => boolean | Promise<boolean>,
  what: string,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** A self-signed certificate (RSA, SANs `DNS:<cn>` and `IP:127.0.0.1`) in `dir`. */
export async function makeCert(
  dir: string,
  name: string,
  cn: string,
): Promise<{ crt: string; key: string; crtPath: string; keyPath: string }> {
  const pki = await TestPki.create(`${dir}/${name}`);
  const { certFile, keyFile } = await pki.selfSigned(cn, { key: "rsa", days: 2 });
  return {
    crt: await Deno.readTextFile(certFile),
    key: await Deno.readTextFile(keyFile),
    crtPath: certFile,
    keyPath: keyFile,
  };
}

export function tlsSecret(
  name: string,
  crt: string,
  key: string,
  ca?: string,
  ns = NS,
): KubeObject {
  const data: Record<string, string> = { "tls.crt": btoa(crt), "tls.key": btoa(key) };
  if (ca) data["ca.crt"] = btoa(ca);
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/tls",
    metadata: { name, namespace: ns },
    data,
  } as KubeObject;
}
