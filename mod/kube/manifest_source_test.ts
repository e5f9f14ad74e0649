import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { memoryLogger } from "../log/mod.ts";
import { waitFor } from "../../tests/support/wait.ts";
import { ManifestSource } from "./manifest_source.ts";
import { parseManifest } from "./manifests.ts";
import { ClusterStore } from "./store.ts";

const SERVICES = `# two services and their slice
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  clusterIP: 198.19.0.10
  ports: [{port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: 198.19.0.11, ports: [{port: 5432}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [198.18.0.2], nodeName: n1, conditions: {ready: true}}]
ports: [{port: 8080, name: ""}]
`;

const LIST = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: n1}
- apiVersion: networking.istio.io/v1alpha3
  kind: DestinationRule
  metadata: {name: web, namespace: demo}
  spec: {host: web, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: ignored}
`;

Deno.test("parseManifest reads multi-document files and List kinds, defaulting the namespace", () => {
  const a = parseManifest("svc.yaml", SERVICES);
  assertEquals(
    a.objects.map((o) => [o.kind, o.object.metadata.namespace, o.object.metadata.name, o.line]),
    [
      ["services", "demo", "web", 2],
      ["services", "default", "db", 9],
      ["endpointslices", "demo", "web-1", 14],
    ],
  );
  const b = parseManifest("list.yaml", LIST);
  assertEquals(b.objects.map((o) => [o.kind, o.object.metadata.name]), [["nodes", "n1"], [
    "destinationrules",
    "web",
  ]]);
  assertEquals(b.skipped.map((s) => s.ignoredKind), ["apps/v1/Deployment"]);
});

Deno.test("parseManifest reports file:line:col for syntax errors and skips malformed objects", () => {
  let msg = "";
  try {
    parseManifest("bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x\n  bad: [\n");
  } catch (err) {
    msg = (err as Error).message;
  }
  assert(/^bad\.yaml:\d+:\d+: /.test(msg), msg);
  const r = parseManifest(
    "m.yaml",
    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: http}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n}\n",
  );
  assertEquals(r.objects.map((o) => o.object.metadata.name), ["n"]);
  assert(
    /^m\.yaml:1:1: malformed services default\/x: spec\.ports\[0\]\.port/.test(
      r.skipped[0].error.message,
    ),
    r.skipped[0].error.message,
  );
});

Deno.test("ManifestSource follows folder changes and keeps the last good content of a broken file", async () => {
  const dir = await Deno.makeTempDir();
  const store = new ClusterStore();
  const { logger, lines } = memoryLogger();
  const source = new ManifestSource({ store, logger }, { dir, debounceMs: 30 });
  try {
    await Deno.writeTextFile(join(dir, "services.yaml"), SERVICES);
    await Deno.mkdir(join(dir, "sub"));
    await Deno.writeTextFile(join(dir, "sub", "list.yml"), LIST);
    await Deno.writeTextFile(join(dir, "notes.txt"), "not a manifest");
    source.start(new AbortController().signal);
    await source.synced();
    assertEquals(store.list("services").map((s) => s.metadata.name).sort(), ["db", "web"]);
    assert(store.get("destinationrules", "demo", "web"));
    assertEquals(source.status().synced, true);

    // A change is picked up.
    await Deno.writeTextFile(
      join(dir, "services.yaml"),
      SERVICES.replace("198.19.0.10", "198.19.0.20"),
    );
    await waitFor(
      () => store.get("services", "demo", "web")?.spec?.clusterIP === "198.19.0.20",
      "new clusterIP",
    );

    // A broken file keeps its last good content and is reported with file:line.
    await Deno.writeTextFile(
      join(dir, "services.yaml"),
      "apiVersion: v1\nkind: Service\nmetadata: {name: [\n",
    );
    await waitFor(() => source.status().degraded, "degraded after a bad file");
    assertEquals(store.list("services").length, 2);
    const err = lines.find((l) =>
      l.msg === "cannot read manifest file, keeping its last good content"
    );
    assertEquals([err?.file, typeof err?.line, err?.kept], ["services.yaml", "number", 3]);

    // A new file adds objects; removing a file removes its objects.
    await Deno.writeTextFile(
      join(dir, "extra.yaml"),
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kubeedge}\ndata: {a: b}\n",
    );
    await waitFor(() => store.get("configmaps", "kubeedge", "c"), "configmap from the new file");
    await Deno.remove(join(dir, "sub"), { recursive: true });
    await waitFor(() => !store.get("nodes", undefined, "n1"), "node gone with its file");

    // Fixing the file clears the error.
    await Deno.writeTextFile(join(dir, "services.yaml"), SERVICES);
    await waitFor(() => !source.status().degraded, "healthy again");
  } finally {
    await source.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ManifestSource refuses a folder that does not exist", async () => {
  const source = new ManifestSource({ store: new ClusterStore(), logger: memoryLogger().logger }, {
    dir: `/nonexistent-${Deno.pid}`,
  });
  source.start(new AbortController().signal);
  let msg = "";
  await source.synced().catch((err) => msg = err.message);
  assert(msg.includes("manifestDir"), msg);
  await source.stop();
});
