import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { memoryLogger } from "../log/mod.ts";
import { TestMetaServer } from "../../tests/support/metaserver.ts";
import { waitFor } from "../../tests/support/wait.ts";
import { ApiSource } from "./api_source.ts";
import { ClusterStore } from "./store.ts";
import { FetchTransport } from "./transport_fetch.ts";
import { ClientNodeTransport } from "./transport_client_node.ts";
import type { KubeTransport } from "./transport.ts";
import { KINDS } from "./types.ts";

const NS = `api-src-${Deno.pid}`;

const TRANSPORTS: { name: string; make: (url: string) => Promise<KubeTransport> }[] = [
  {
    name: "fetch",
    make: (url) => Promise.resolve(new FetchTransport(url, { requestTimeoutMs: 2000 })),
  },
  {
    name: "client-node",
    make: (url) => ClientNodeTransport.create({ server: url }, { requestTimeoutMs: 2000 }),
  },
];

function svc(name: string, v = "1") {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: NS, name, labels: { v } },
    spec: { clusterIP: "198.19.0.1", ports: [{ port: 80, protocol: "TCP" }] },
  };
}

/** Records every store event of services as "type name v". */
function recordServices(store: ClusterStore): string[] {
  const log: string[] = [];
  store.on(
    "services:update",
    (c) => log.push(`${c.type} ${c.object.metadata.name} ${c.object.metadata.labels?.v}`),
  );
  return log;
}

async function setup(
  transportName: string,
  opts: { missingGroups?: string[]; missingRetryMs?: number; goneAs?: "event" | "status" } = {},
) {
  const ms = await TestMetaServer.start({
    bookmarkIntervalMs: 200,
    missingGroups: opts.missingGroups,
    goneAs: opts.goneAs,
  });
  const store = new ClusterStore();
  const { logger, lines } = memoryLogger();
  const t = TRANSPORTS.find((t) => t.name === transportName)!;
  const source = new ApiSource({ transport: await t.make(ms.url), store, logger }, {
    source: "metaserver",
    backoff: { initialMs: 50, maxMs: 400 },
    missingRetryMs: opts.missingRetryMs ?? 60_000,
  });
  const ctl = new AbortController();
  return {
    ms,
    store,
    lines,
    source,
    start: () => source.start(ctl.signal),
    async [Symbol.asyncDispose]() {
      await source.stop();
      await ms.stop();
    },
  };
}

for (const { name } of TRANSPORTS) {
  Deno.test(`ApiSource (${name}) picks up a Service added after the first sync within 1 s`, async () => {
    await using env = await setup(name);
    env.ms.apply(svc("before"));
    env.start();
    await env.source.synced();
    assert(env.store.get("services", NS, "before"));
    assertEquals(env.source.status().synced, true);
    const t0 = performance.now();
    env.ms.apply(svc("after"));
    await waitFor(
      () => env.store.get("services", NS, "after"),
      "service 'after' in the store",
      1000,
    );
    assert(performance.now() - t0 < 1000);
  });

  Deno.test(`ApiSource (${name}) recovers a dropped watch without losing or repeating updates`, async () => {
    await using env = await setup(name);
    env.ms.apply(svc("a"));
    env.ms.apply(svc("b"));
    const events = recordServices(env.store);
    env.start();
    await env.source.synced();
    await waitFor(() => env.ms.watchCount === KINDS.length, "all watches open");
    // Cut the watches and change objects while no watch is open.
    env.ms.stall(true);
    env.ms.dropWatches();
    env.ms.apply(svc("a", "2"));
    env.ms.delete(svc("b"));
    env.ms.apply(svc("c"));
    env.ms.stall(false);
    await waitFor(() => env.store.get("services", NS, "c"), "service c after the re-watch");
    await waitFor(() => !env.store.get("services", NS, "b"), "service b deleted");
    assertEquals(env.store.get("services", NS, "a")?.metadata.labels?.v, "2");
    assertEquals(events, ["added a 1", "added b 1", "modified a 2", "deleted b 1", "added c 1"]);
  });

  for (const goneAs of ["event", "status"] as const) {
    Deno.test(`ApiSource (${name}) re-lists after 410 Gone (as ${goneAs}) and emits only the difference`, async () => {
      await using env = await setup(name, { goneAs });
      for (const n of ["a", "b", "c"]) env.ms.apply(svc(n));
      const events = recordServices(env.store);
      env.start();
      await env.source.synced();
      await waitFor(() => env.ms.watchCount === KINDS.length, "all watches open");
      const listsBefore = env.ms.requestCount("list", "services");
      env.ms.stall(true);
      env.ms.dropWatches();
      env.ms.apply(svc("a", "2"));
      env.ms.delete(svc("c"));
      env.ms.apply(svc("d"));
      env.ms.compactHistory();
      env.ms.stall(false);
      await waitFor(() => env.store.get("services", NS, "d"), "service d after the re-list");
      await waitFor(() => env.ms.watchCount === KINDS.length, "watches re-opened");
      assert(env.ms.requestCount("list", "services") > listsBefore, "a re-list happened");
      env.ms.apply(svc("e"));
      await waitFor(() => env.store.get("services", NS, "e"), "service e via the new watch");
      assertEquals(events, [
        "added a 1",
        "added b 1",
        "added c 1",
        "modified a 2",
        "added d 1",
        "deleted c 1",
        "added e 1",
      ]);
    });
  }
}

Deno.test("ApiSource skips malformed objects with a log naming kind, namespace, name and field", async () => {
  await using env = await setup("fetch");
  env.ms.apply(svc("good"));
  env.ms.apply({ ...svc("bad"), spec: { ports: [{ port: "eighty" }] } });
  env.ms.apply({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { namespace: NS, name: "cm" },
    data: { k: 1 },
  });
  env.start();
  await env.source.synced();
  assert(env.store.get("services", NS, "good"));
  assertEquals(env.store.get("services", NS, "bad"), undefined);
  assertEquals(env.store.get("configmaps", NS, "cm"), undefined);
  const warn = env.lines.find((l) => l.msg === "skipping malformed object" && l.name === "bad");
  assertEquals(
    [warn?.kind, warn?.namespace, warn?.field],
    ["services", NS, "spec.ports[0].port"],
  );
  const cmWarn = env.lines.find((l) => l.msg === "skipping malformed object" && l.name === "cm");
  assertEquals(cmWarn?.field, "data.k");
  // A malformed update arriving by watch is skipped too; the good version stays.
  env.ms.apply({ ...svc("good"), spec: { clusterIP: 42 } });
  env.ms.apply(svc("later"));
  await waitFor(() => env.store.get("services", NS, "later"), "service 'later'");
  assertEquals(env.store.get("services", NS, "good")?.spec?.clusterIP, "198.19.0.1");
});

Deno.test("ApiSource treats a missing CRD group as synced, logs it once and finds it later", async () => {
  await using env = await setup("fetch", {
    missingGroups: ["networking.istio.io"],
    missingRetryMs: 300,
  });
  env.start();
  await env.source.synced();
  const st = env.source.status();
  assertEquals([st.synced, st.degraded, st.kinds.gateways], [true, false, "missing (404)"]);
  env.ms.apply({
    apiVersion: "networking.istio.io/v1beta1",
    kind: "Gateway",
    metadata: { namespace: NS, name: "gw" },
  });
  await waitFor(() => env.ms.requestCount("list", "gateways") >= 4, "a few retries");
  assertEquals(
    env.lines.filter((l) =>
      l.msg?.toString().startsWith("resource not served") && l.component === "gateways"
    ).length,
    1,
  );
  env.ms.setGroupAvailable("networking.istio.io", true);
  await waitFor(() => env.store.get("gateways", NS, "gw"), "gateway after the CRD appears");
  assertEquals(env.source.status().kinds.gateways, "watching");
});

Deno.test("ApiSource keeps the store and reports degraded while the server is down, then resyncs", async () => {
  await using env = await setup("fetch");
  env.ms.apply(svc("a"));
  env.start();
  await env.source.synced();
  const port = env.ms.port;
  await env.ms.stop();
  await waitFor(() => env.source.status().degraded, "degraded status");
  assert(env.source.status().lastError);
  assert(env.store.get("services", NS, "a"), "the store keeps its content");
  // The server comes back on the same address with different content.
  await using ms2 = await TestMetaServer.start({
    port,
    initialResourceVersion: 1000,
    objects: [svc("b")],
  });
  await waitFor(() => env.store.get("services", NS, "b"), "service b from the new server", 5000);
  assertEquals(env.store.get("services", NS, "a"), undefined);
  await waitFor(() => !env.source.status().degraded, "healthy status again");
  await env.source.stop();
  await ms2.stop();
});

Deno.test("ApiSource counts a forbidden kind as synced, keeps the others and says why", async () => {
  await using env = await setup("fetch");
  env.ms.setForbidden("secrets", true);
  env.ms.apply(svc("a"));
  env.start();
  await env.source.synced();
  assert(env.store.get("services", NS, "a"));
  const st = env.source.status();
  assertEquals([st.synced, st.degraded, st.kinds.secrets], [true, false, "forbidden (403)"]);
});

Deno.test("ApiSource with resyncMs re-lists periodically without repeating events", async () => {
  await using env = await setup("fetch");
  env.ms.apply(svc("a"));
  const events = recordServices(env.store);
  const source = new ApiSource(
    { transport: new FetchTransport(env.ms.url), store: env.store, logger: memoryLogger().logger },
    { source: "metaserver", resyncMs: 1000, kinds: ["services"] },
  );
  source.start(new AbortController().signal);
  try {
    await source.synced();
    await waitFor(() => env.ms.requestCount("list", "services") >= 2, "a second list", 4000);
    assertEquals(events, ["added a 1"]);
  } finally {
    await source.stop();
  }
});
