import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { TestMetaServer } from "./metaserver.ts";

const NS = `ms-test-${Deno.pid}`;

function svc(name: string, labels: Record<string, string> = {}, ns = NS) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: ns, name, labels },
    spec: { clusterIP: "198.19.0.10", ports: [{ port: 80, protocol: "TCP" }] },
  };
}

// deno-lint-ignore no-explicit-any
async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.json() };
}

/** Reads JSON lines from a watch response, each read bounded by a deadline. */
class WatchReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buf = "";
  constructor(res: Response) {
    this.#reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  }
  // deno-lint-ignore no-explicit-any
  async next(timeoutMs = 3000): Promise<any | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#buf.includes("\n")) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#reader.read(),
        new Promise<"timeout">((res) =>
          timer = setTimeout(() => res("timeout"), Math.max(1, deadline - Date.now()))
        ),
      ]);
      clearTimeout(timer);
      if (r === "timeout") throw new Error("no watch event within deadline");
      if (r.done) return undefined;
      this.#buf += r.value;
    }
    const i = this.#buf.indexOf("\n");
    const line = this.#buf.slice(0, i);
    this.#buf = this.#buf.slice(i + 1);
    return JSON.parse(line);
  }
  async close() {
    await this.#reader.cancel();
  }
}

Deno.test("TestMetaServer lists namespaced and cluster-wide paths with a monotonic resourceVersion", async () => {
  await using ms = await TestMetaServer.start();
  ms.apply(svc("a", { app: "x" }));
  ms.apply(svc("b", { app: "y" }));
  ms.apply(svc("c", {}, `${NS}-other`));
  const all = await getJson(`${ms.url}/api/v1/services`);
  assertEquals(all.status, 200);
  assertEquals(all.body.kind, "ServiceList");
  assertEquals(all.body.items.length, 3);
  assertEquals(all.body.metadata.resourceVersion, String(ms.resourceVersion));
  const ns = await getJson(`${ms.url}/api/v1/namespaces/${NS}/services`);
  assertEquals(ns.body.items.map((o: { metadata: { name: string } }) => o.metadata.name), [
    "a",
    "b",
  ]);
  const sel = await getJson(`${ms.url}/api/v1/services?labelSelector=app%3Dy`);
  assertEquals(sel.body.items.map((o: { metadata: { name: string } }) => o.metadata.name), ["b"]);
  const fsel = await getJson(`${ms.url}/api/v1/services?fieldSelector=metadata.name%3Dc`);
  assertEquals(fsel.body.items.length, 1);
  const one = await getJson(`${ms.url}/api/v1/namespaces/${NS}/services/a`);
  assertEquals(one.body.kind, "Service");
  assertEquals(one.body.metadata.name, "a");
  const rv1 = Number(one.body.metadata.resourceVersion);
  ms.apply(svc("a", { app: "z" }));
  const again = await getJson(`${ms.url}/api/v1/namespaces/${NS}/services/a`);
  assert(Number(again.body.metadata.resourceVersion) > rv1);
  const missing = await getJson(`${ms.url}/api/v1/namespaces/${NS}/services/nope`);
  assertEquals(missing.status, 404);
  assertEquals(missing.body.reason, "NotFound");
});

Deno.test("TestMetaServer watch streams ADDED/MODIFIED/DELETED from a resourceVersion, with bookmarks", async () => {
  await using ms = await TestMetaServer.start({ bookmarkIntervalMs: 100 });
  ms.apply(svc("a"));
  const rv = ms.resourceVersion;
  ms.apply(svc("b")); // after rv: must be replayed
  const res = await fetch(
    `${ms.url}/api/v1/services?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true`,
  );
  const w = new WatchReader(res);
  try {
    const e1 = await w.next();
    assertEquals([e1.type, e1.object.metadata.name], ["ADDED", "b"]);
    ms.apply(svc("a", { v: "2" }));
    const e2 = await w.next();
    assertEquals([e2.type, e2.object.metadata.labels.v], ["MODIFIED", "2"]);
    ms.delete(svc("b"));
    const e3 = await w.next();
    assertEquals([e3.type, e3.object.metadata.name], ["DELETED", "b"]);
    assertEquals(e3.object.metadata.resourceVersion, String(ms.resourceVersion));
    const e4 = await w.next();
    assertEquals(e4.type, "BOOKMARK");
    assertEquals(e4.object.metadata.resourceVersion, String(ms.resourceVersion));
  } finally {
    await w.close();
  }
});

Deno.test("TestMetaServer answers a watch from a compacted resourceVersion with 410 Expired", async () => {
  for (const goneAs of ["event", "status"] as const) {
    await using ms = await TestMetaServer.start({ goneAs });
    ms.apply(svc("a"));
    const old = ms.resourceVersion;
    ms.apply(svc("b"));
    ms.compactHistory();
    const res = await fetch(`${ms.url}/api/v1/services?watch=true&resourceVersion=${old}`);
    if (goneAs === "status") {
      assertEquals(res.status, 410);
      const body = await res.json();
      assertEquals([body.kind, body.code, body.reason], ["Status", 410, "Expired"]);
    } else {
      assertEquals(res.status, 200);
      const w = new WatchReader(res);
      const ev = await w.next();
      assertEquals([ev.type, ev.object.code, ev.object.reason], ["ERROR", 410, "Expired"]);
      assertEquals(await w.next(), undefined);
    }
    // The current version still works.
    const ok = await fetch(
      `${ms.url}/api/v1/services?watch=true&resourceVersion=${ms.resourceVersion}`,
    );
    assertEquals(ok.status, 200);
    await ok.body!.cancel();
  }
});

Deno.test("TestMetaServer.dropWatches ends open streams and stall holds requests until released", async () => {
  await using ms = await TestMetaServer.start();
  const res = await fetch(
    `${ms.url}/api/v1/nodes?watch=true&resourceVersion=${ms.resourceVersion}`,
  );
  const w = new WatchReader(res);
  assertEquals(ms.watchCount, 1);
  assertEquals(ms.dropWatches(), 1);
  assertEquals(await w.next(), undefined);
  assertEquals(ms.watchCount, 0);

  ms.stall(true);
  let answered = false;
  const pending = fetch(`${ms.url}/api/v1/nodes`).then(async (r) => {
    answered = true;
    return await r.json();
  });
  // A request that arrives while stalled stays unanswered for at least a while.
  await new Promise((r) => setTimeout(r, 200));
  assertEquals(answered, false);
  ms.stall(false);
  const body = await pending;
  assertEquals(body.kind, "NodeList");
});

Deno.test("TestMetaServer applies merge and JSON patches to nodes and reports them to watchers", async () => {
  await using ms = await TestMetaServer.start();
  ms.apply({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: `n-${Deno.pid}`, labels: { a: "1" } },
  });
  const url = `${ms.url}/api/v1/nodes/n-${Deno.pid}`;
  const rv = ms.resourceVersion;
  const merge = await getJson(url, {
    method: "PATCH",
    headers: { "content-type": "application/merge-patch+json" },
    body: JSON.stringify({
      metadata: { annotations: { "edgemesh.kubeedge.io/edge-health": "{}" }, labels: { a: null } },
    }),
  });
  assertEquals(merge.status, 200);
  assertEquals(merge.body.metadata.annotations["edgemesh.kubeedge.io/edge-health"], "{}");
  assertEquals(merge.body.metadata.labels, {});
  const jp = await getJson(url, {
    method: "PATCH",
    headers: { "content-type": "application/json-patch+json" },
    body: JSON.stringify([
      { op: "add", path: "/metadata/annotations/nodeunhealth", value: "yes" },
      { op: "remove", path: "/metadata/annotations/edgemesh.kubeedge.io~1edge-health" },
    ]),
  });
  assertEquals(jp.status, 200);
  assertEquals(jp.body.metadata.annotations, { nodeunhealth: "yes" });
  const bad = await getJson(url, {
    method: "PATCH",
    headers: { "content-type": "application/json-patch+json" },
    body: JSON.stringify([{ op: "remove", path: "/metadata/nothere" }]),
  });
  assertEquals(bad.status, 400);
  const res = await fetch(`${ms.url}/api/v1/nodes?watch=true&resourceVersion=${rv}`);
  const w = new WatchReader(res);
  try {
    assertEquals((await w.next()).type, "MODIFIED");
    assertEquals((await w.next()).object.metadata.annotations, { nodeunhealth: "yes" });
  } finally {
    await w.close();
  }
});

Deno.test("TestMetaServer serves discovery and can make a CRD group 404", async () => {
  await using ms = await TestMetaServer.start({ missingGroups: ["networking.istio.io"] });
  const apis = await getJson(`${ms.url}/apis`);
  assertEquals(apis.body.groups.map((g: { name: string }) => g.name), ["discovery.k8s.io"]);
  assertEquals(
    (await getJson(`${ms.url}/apis/networking.istio.io/v1beta1/destinationrules`)).status,
    404,
  );
  ms.setGroupAvailable("networking.istio.io", true);
  const dr = await getJson(`${ms.url}/apis/networking.istio.io/v1alpha3/destinationrules`);
  assertEquals([dr.status, dr.body.kind], [200, "DestinationRuleList"]);
  const core = await getJson(`${ms.url}/api/v1`);
  assert(core.body.resources.some((r: { name: string }) => r.name === "endpoints"));
  const version = await getJson(`${ms.url}/version`);
  assertMatch(version.body.gitVersion, /^v1\./);
});

Deno.test("kubectl reads and patches the TestMetaServer", async () => {
  await using ms = await TestMetaServer.start();
  ms.apply(svc("web"));
  ms.apply({ apiVersion: "v1", kind: "Node", metadata: { name: `kn-${Deno.pid}` } });
  const kubectl = async (...args: string[]) => {
    const out = await new Deno.Command("kubectl", {
      args: ["--server", ms.url, "--request-timeout=5s", ...args],
      stdout: "piped",
      stderr: "piped",
      env: { KUBECONFIG: "/dev/null" },
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, `kubectl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    return text;
  };
  const table = await kubectl("get", "svc", "-A");
  assertMatch(table, /NAMESPACE\s+NAME\s+TYPE\s+CLUSTER-IP/);
  assertMatch(table, new RegExp(`${NS}\\s+web\\s+ClusterIP\\s+198\\.19\\.0\\.10`));
  await kubectl("annotate", "node", `kn-${Deno.pid}`, "checked=yes");
  const ann = await kubectl(
    "get",
    "node",
    `kn-${Deno.pid}`,
    "-o",
    "jsonpath={.metadata.annotations.checked}",
  );
  assertEquals(ann, "yes");
});

Deno.test("TestMetaServer creates, replaces and deletes objects over HTTP with conflicts checked", async () => {
  await using ms = await TestMetaServer.start();
  const base = `${ms.url}/api/v1/namespaces/${NS}/configmaps`;
  const post = (body: unknown) =>
    getJson(base, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const created = await post({ metadata: { name: "cm" }, data: { a: "1" } });
  assertEquals([created.status, created.body.metadata.namespace], [201, NS]);
  assertEquals((await post({ metadata: { name: "cm" } })).status, 409);
  const put = (body: unknown) =>
    getJson(`${base}/cm`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const replaced = await put({
    metadata: { name: "cm", resourceVersion: created.body.metadata.resourceVersion },
    data: { a: "2" },
  });
  assertEquals([replaced.status, replaced.body.data.a], [200, "2"]);
  const stale = await put({
    metadata: { name: "cm", resourceVersion: created.body.metadata.resourceVersion },
    data: { a: "3" },
  });
  assertEquals([stale.status, stale.body.reason], [409, "Conflict"]);
  const del = await getJson(`${base}/cm`, { method: "DELETE" });
  assertEquals(del.status, 200);
  assertEquals(ms.get("v1", "ConfigMap", NS, "cm"), undefined);
  assertEquals((await getJson(`${base}/cm`, { method: "DELETE" })).status, 404);
});
