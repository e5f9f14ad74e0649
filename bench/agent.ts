/** Starts the bundled agent for benchmarks, on loopback, with a manifests folder. */

import { stringify } from "yaml";

export interface BenchAgent {
  admin: string;
  pid: number;
  dir: string;
  stop(): Promise<void>;
  status(): Promise<Record<string, unknown>>;
  rssBytes(): Promise<number>;
  /** "ns/name:port" → listener port of the proxy. */
  listener(ns: string, name: string, port: number): Promise<number>;
}

const ROOT = new URL("../", import.meta.url).pathname;

/**
 * Builds the bundle once into a temp dir (so benchmarks never race a dev build), the way
 * `deno task bundle` does (with the batched DNS worker embedded).
 */
export async function buildBundle(dir: string): Promise<string> {
  const out = `${dir}/edgemesh.js`;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}scripts/bundle.ts`, out],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`bundle failed: ${new TextDecoder().decode(r.stderr)}`);
  return out;
}

export async function startBenchAgent(
  bundle: string,
  manifests: unknown[],
  config: Record<string, unknown>,
): Promise<BenchAgent & { startMs: number }> {
  const dir = await Deno.makeTempDir({ prefix: "edgemesh-bench-" });
  await Deno.mkdir(`${dir}/manifests`);
  await Deno.writeTextFile(
    `${dir}/manifests/cluster.yaml`,
    manifests.map((m) => stringify(m)).join("---\n"),
  );
  const cfg = {
    nodeName: "bench-node",
    logLevel: "warn",
    kubeAPIConfig: { manifestDir: `${dir}/manifests` },
    commonConfig: { stateDir: `${dir}/state`, adminAddress: "127.0.0.1:0" },
    ...config,
  };
  await Deno.writeTextFile(`${dir}/edgemesh.yaml`, stringify(cfg));
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-net",
      bundle,
      "agent",
      "--config",
      `${dir}/edgemesh.yaml`,
      "--log-level",
      "info",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let admin = "";
  while (!admin) {
    const { value, done } = await reader.read();
    if (done) throw new Error("agent exited before it was ready");
    buf += value;
    for (const line of buf.split("\n")) {
      if (line.includes('"agent ready"')) admin = JSON.parse(line).admin;
    }
  }
  // Keep draining stdout so the agent never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  while (
    (await fetch(`http://${admin}/readyz`).then(async (
      r,
    ) => (await r.body?.cancel(), r.status))) !== 200
  ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const startMs = performance.now() - t0;
  const status = async () => await (await fetch(`http://${admin}/api/v1/status`)).json();
  return {
    admin,
    pid: child.pid,
    dir,
    startMs,
    status,
    rssBytes: async () => {
      const text = await (await fetch(`http://${admin}/metrics`)).text();
      return Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? 0);
    },
    listener: async (ns, name, port) => {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const s = await status();
        for (
          const svc of (s.services ?? []) as {
            namespace: string;
            name: string;
            ports: { port: number; listen: string }[];
          }[]
        ) {
          if (svc.namespace !== ns || svc.name !== name) continue;
          const p = svc.ports.find((x) => x.port === port);
          if (p) return Number(p.listen.slice(p.listen.lastIndexOf(":") + 1));
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no proxy listener for ${ns}/${name}:${port}`);
    },
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch (err) {
        if (!(err instanceof TypeError)) throw err;
      }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A Service with one endpoint on this node at 127.0.0.1:targetPort. */
export function localService(
  name: string,
  port: number,
  portName: string,
  targetPort: number,
  node = "bench-node",
): unknown[] {
  return [
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: "bench" },
      spec: {
        clusterIP: `198.19.9.${port % 250}`,
        ports: [{ name: portName, port, protocol: "TCP", targetPort }],
      },
    },
    {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: `${name}-1`,
        namespace: "bench",
        labels: { "kubernetes.io/service-name": name },
      },
      addressType: "IPv4",
      ports: [{ name: portName, port: targetPort, protocol: "TCP" }],
      endpoints: [{ addresses: ["127.0.0.1"], nodeName: node, conditions: { ready: true } }],
    },
  ];
}

export const BENCH_NODE = {
  apiVersion: "v1",
  kind: "Node",
  metadata: { name: "bench-node" },
  status: {
    addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
    conditions: [{ type: "Ready", status: "True" }],
  },
};
