/** `edgemesh admission`: the webhook as users run it, against the test metaserver, with curl. */
import { equal, match, ok } from "node:assert/strict";
import { stringify } from "yaml";
import { TestMetaServer } from "./support/metaserver.ts";
import { PROJECT_ROOT } from "./support/agent.ts";
import { waitFor } from "./support/wait.ts";
import { TestPki } from "./support/pki.ts";

async function sh(cmd: string, args: string[], stdin?: string) {
  const c = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = c.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await c.output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

function review(refreshedAt: string) {
  return {
    kind: "AdmissionReview",
    apiVersion: "admission.k8s.io/v1",
    request: {
      uid: "cli-test-1",
      kind: { group: "", version: "v1", kind: "Node" },
      resource: { group: "", version: "v1", resource: "nodes" },
      name: "edge-1",
      operation: "UPDATE",
      object: {
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name: "edge-1",
          annotations: {
            "edgemesh.kubeedge.io/edge-health": JSON.stringify({
              state: "healthy",
              healthy: 3,
              unhealthy: 0,
              members: 3,
              group: "*",
              decidedAt: refreshedAt,
              refreshedAt,
            }),
          },
        },
        spec: {
          taints: [
            { key: "node.kubernetes.io/unreachable", effect: "NoSchedule" },
            { key: "node.kubernetes.io/unreachable", effect: "NoExecute" },
          ],
        },
        status: { conditions: [{ type: "Ready", status: "Unknown" }] },
      },
    },
  };
}

Deno.test("edgemesh admission strips the unreachable NoExecute taint of a node its group votes healthy (HTTPS, curl)", async () => {
  const dir = await Deno.makeTempDir();
  const ms = await TestMetaServer.start();
  let child: Deno.ChildProcess | undefined;
  try {
    ms.apply({ apiVersion: "v1", kind: "Node", metadata: { name: "edge-1" } });
    const pki = await TestPki.create(dir);
    const tls = await pki.selfSigned("127.0.0.1", { key: "rsa", days: 1, san: ["IP:127.0.0.1"] });
    await Deno.writeTextFile(
      `${dir}/cfg.yaml`,
      stringify({ kubeAPIConfig: { metaServer: { server: ms.url } } }),
    );
    using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = l.addr.port;
    l.close();
    child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${PROJECT_ROOT}main.ts`,
        "admission",
        "--listen",
        `127.0.0.1:${port}`,
        "--tls-cert",
        tls.certFile,
        "--tls-key",
        tls.keyFile,
        "--config",
        `${dir}/cfg.yaml`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const post = (body: unknown) =>
      sh("curl", [
        "-s",
        "--cacert",
        tls.certFile,
        "-H",
        "content-type: application/json",
        "--data-binary",
        "@-",
        `https://127.0.0.1:${port}/mutate`,
      ], JSON.stringify(body));
    const first = await waitFor(async () => {
      const r = await post(review(new Date().toISOString()));
      return r.code === 0 ? r : undefined;
    }, { what: "webhook answers", timeoutMs: 15_000 });
    const res = JSON.parse(first.stdout).response;
    equal(res.uid, "cli-test-1");
    equal(res.allowed, true);
    equal(res.patchType, "JSONPatch");
    const patch = JSON.parse(atob(res.patch));
    ok(
      patch.some((p: { op: string; path: string }) =>
        p.op === "remove" && p.path === "/spec/taints/1"
      ),
      JSON.stringify(patch),
    );
    // A vote not re-confirmed for longer than the max age does not protect the node.
    const stale =
      JSON.parse((await post(review(new Date(Date.now() - 3_600_000).toISOString()))).stdout)
        .response;
    equal(stale.allowed, true);
    equal(stale.patch, undefined);
    match(JSON.stringify(stale.warnings), /stale/);
    child.kill("SIGTERM");
    equal((await child.status).code, 0);
    child = undefined;
  } finally {
    if (child) {
      child.kill("SIGKILL");
      await child.status;
    }
    await ms.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("edgemesh admission refuses --always-reachable together with unit checking, and a bad max age", async () => {
  const dir = await Deno.makeTempDir();
  const ms = await TestMetaServer.start();
  try {
    ms.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "edge-health-config", namespace: "kube-system" },
      data: { "unit-internal-check": "true", "check-units": "a" },
    });
    await Deno.writeTextFile(
      `${dir}/cfg.yaml`,
      stringify({ kubeAPIConfig: { metaServer: { server: ms.url } } }),
    );
    await Deno.writeTextFile(`${dir}/x.pem`, "unused");
    const base = [
      "run",
      "-A",
      `${PROJECT_ROOT}main.ts`,
      "admission",
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      `${dir}/x.pem`,
      "--tls-key",
      `${dir}/x.pem`,
      "--config",
      `${dir}/cfg.yaml`,
    ];
    const r = await sh(Deno.execPath(), [...base, "--always-reachable"]);
    equal(r.code, 2, r.stderr + r.stdout);
    match(r.stderr, /always-reachable|unit/i);
    const bad = await sh(Deno.execPath(), [...base, "--annotation-max-age", "soon"]);
    equal(bad.code, 2);
    match(bad.stderr, /--annotation-max-age must be a duration/);
  } finally {
    await ms.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
