/** SOCKS5: services by name and ClusterIP through the proxy, nodes by name through the tunnel Dialer. */
import { equal, match, ok } from "node:assert/strict";
import { nullLogger } from "../mod/log/mod.ts";
import { StoreCatalog } from "../mod/kube/mod.ts";
import { Socks5Server } from "../mod/proxy/socks5.ts";
import { httpNamed } from "./support/backends.ts";
import { putService } from "./support/cluster_fixture.ts";
import { startProxy } from "./support/proxy_harness.ts";

async function curlVia(socksPort: number, url: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("curl", {
    args: ["-s", "-S", "--max-time", "5", "--socks5-hostname", `127.0.0.1:${socksPort}`, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("SOCKS5 reaches a service by name and by ClusterIP, a node by name, and refuses anything else", async () => {
  await using h = await startProxy();
  const web = httpNamed("web-1");
  const sshLike = httpNamed("node-n2-port");
  const catalog = new StoreCatalog(h.store);
  putService(h.store, {
    namespace: "edgemesh-test",
    name: "hostname-lb-svc",
    clusterIP: "198.19.0.10",
    ports: [{ name: "http-0", port: 12345, protocol: "TCP", targetPort: web.port }],
    endpoints: [{ ip: "127.0.0.1", port: web.port, node: "n1" }],
  });
  h.store.upsert("nodes", {
    metadata: { name: "n2", resourceVersion: "1" },
    status: { addresses: [{ type: "InternalIP", address: "127.0.0.1" }] },
  });
  await h.listener("hostname-lb-svc", 12345, "tcp", "edgemesh-test");
  const socks = new Socks5Server({
    logger: nullLogger(),
    metrics: h.metrics,
    catalog,
    store: h.store,
    dialer: h.dialer,
    serviceListener: (ns, name, port) => h.proxy.listenerFor(ns, name, port),
  }, {
    nodeName: "n1",
    listenAddress: "127.0.0.1",
    listenPort: 0,
    clusterDomain: "cluster.local",
    tcpIdleTimeoutMs: 10_000,
  });
  await socks.start(AbortSignal.timeout(1000));
  try {
    for (
      const host of [
        "hostname-lb-svc.edgemesh-test",
        "hostname-lb-svc.edgemesh-test.svc.cluster.local",
        "198.19.0.10",
      ]
    ) {
      const r = await curlVia(socks.port, `http://${host}:12345/`);
      equal(r.code, 0, `${host}: ${r.out}`);
      equal(r.out, "web-1");
    }
    const n = await curlVia(socks.port, `http://n2:${sshLike.port}/`);
    equal(n.code, 0, n.out);
    equal(n.out, "node-n2-port");
    ok(
      h.dialer.dials.some((d) => d.node === "n2" && d.port === sshLike.port),
      "node traffic went through the Dialer",
    );
    const refused = await curlVia(socks.port, `http://198.18.77.1:80/`);
    equal(refused.code, 97, refused.out); // curl: SOCKS5 connection refused by the proxy
    const unknown = await curlVia(socks.port, `http://nope.nowhere:80/`);
    ok(unknown.code !== 0);
    const text = h.metrics.render();
    match(text, /edgemesh_socks5_connections_total\{kind="service"\} 3/);
    match(text, /edgemesh_socks5_connections_total\{kind="node"\} 1/);
    match(text, /edgemesh_socks5_errors_total\{rep="4"\} 2/);
  } finally {
    await socks.stop();
    await web.close();
    await sshLike.close();
  }
});
