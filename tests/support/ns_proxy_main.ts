/**
 * Child process for the interception test, run inside a test namespace with
 * `ip netns exec`: serves a backend on LISTEN:0, runs the proxy with interception on for
 * ClusterIP services, prints `{"ready":…}` and stops (removing its rules) on "stop" in stdin.
 *
 * Usage: deno run --unstable-net -A ns_proxy_main.ts <listenAddress> [<listenAddressV6>]
 */

import { UNKNOWN_HEALTH } from "../../mod/contracts/mod.ts";
import { ClusterStore, StoreCatalog } from "../../mod/kube/mod.ts";
import { createLogger } from "../../mod/log/mod.ts";
import { Registry } from "../../mod/metrics/mod.ts";
import { ServiceProxy } from "../../mod/proxy/mod.ts";
import { putService } from "./cluster_fixture.ts";
import { DirectDialer } from "./direct_dialer.ts";

if (import.meta.main) {
  const [listen, listen6] = Deno.args;
  const backend = Deno.serve(
    { hostname: listen, port: 0, onListen: () => {} },
    () => new Response("backend"),
  );
  const store = new ClusterStore();
  putService(store, {
    name: "web",
    clusterIP: "198.19.0.10",
    clusterIPs: ["198.19.0.10", "fd98:19::10"],
    type: "NodePort",
    ports: [{ name: "http", port: 80, protocol: "TCP", nodePort: 30080 }],
    endpoints: [{ ip: listen, port: backend.addr.port, node: "ns-node" }],
  });
  putService(store, {
    name: "empty",
    clusterIP: "198.19.0.11",
    ports: [{ name: "http", port: 80, protocol: "TCP" }],
    endpoints: [],
  });
  const logger = createLogger({ level: "warn", sink: (l) => console.error(l) });
  const proxy = new ServiceProxy(
    {
      logger,
      metrics: new Registry(),
      catalog: new StoreCatalog(store),
      store,
      dialer: new DirectDialer(),
      health: UNKNOWN_HEALTH,
    },
    {
      nodeName: "ns-node",
      listenAddress: listen,
      listenAddressV6: listen6,
      intercept: true,
      drainTimeoutMs: 100,
    },
  );
  await proxy.start(new AbortController().signal);
  console.log(JSON.stringify({ ready: true, services: proxy.services() }));
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("stop")) {
    const r = await reader.read();
    if (r.done) break;
    text += r.value;
  }
  await proxy.stop();
  await backend.shutdown();
  console.log(JSON.stringify({ stopped: true }));
}
