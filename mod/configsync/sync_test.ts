import { equal, match } from "node:assert/strict";
import { ClusterStore, type ConfigMap } from "../kube/mod.ts";
import { nullLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { ConfigSync } from "./mod.ts";

const cm = (text: string | undefined, rv: string): ConfigMap => ({
  metadata: { namespace: "kubeedge", name: "edgemesh-agent-cfg", resourceVersion: rv },
  data: text === undefined ? {} : { "edgemesh-agent.yaml": text },
});

Deno.test("ConfigSync writes a valid ConfigMap to the state dir and refuses an invalid one, keeping the file", async () => {
  const dir = await Deno.makeTempDir();
  const store = new ClusterStore();
  const metrics = new Registry();
  const file = `${dir}/edgemesh-agent.yaml`;
  const sync = new ConfigSync({ logger: nullLogger(), metrics, store }, { file });
  try {
    const good =
      "modules:\n  edgeTunnel:\n    relayNodes:\n    - nodeName: relay-1\n      advertiseAddress: [198.18.0.11]\n";
    store.upsert("configmaps", cm(good, "1"));
    await sync.start(AbortSignal.timeout(1000));
    equal(await Deno.readTextFile(file), good);
    equal(sync.state.lastResult, "written");
    equal(await sync.sync(cm(good, "2")), "unchanged");
    equal(await sync.sync(cm("modules:\n  edgeTunnel:\n    listenPort: 70000\n", "3")), "rejected");
    match(
      sync.state.errors[0],
      /configmap kubeedge\/edgemesh-agent-cfg\[edgemesh-agent\.yaml\]:3:5: modules\.edgeTunnel\.listenPort/,
    );
    equal(sync.status().state, "degraded");
    equal(await Deno.readTextFile(file), good, "the last good file is kept");
    equal(await sync.sync(cm(undefined, "4")), "rejected");
    equal(metrics.counter("edgemesh_cluster_config_sync_total", "").get({ result: "rejected" }), 2);
    // A change through the store is picked up.
    const next = good.replace("relay-1", "relay-2");
    store.upsert("configmaps", cm(next, "5"));
    await sync.stop();
    equal(await Deno.readTextFile(file), next);
  } finally {
    await sync.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
