import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import type { VirtualService } from "../kube/mod.ts";
import { VirtualServiceError } from "./errors.ts";
import {
  gatewayRef,
  parseDurationMs,
  parseVirtualService,
  resolveServiceHost,
} from "./parse_virtual_service.ts";

const vs = (
  spec: unknown,
): VirtualService => ({ metadata: { name: "vs", namespace: "edge" }, spec } as VirtualService);

Deno.test("parseVirtualService() reads EdgeMesh's example and resolves names against the namespace", () => {
  const m = parseVirtualService(vs({
    gateways: ["edgemesh-gateway"],
    hosts: ["*"],
    http: [{
      match: [{ uri: { prefix: "/" } }],
      route: [{ destination: { host: "hostname-lb-svc", port: { number: 12345 } } }],
    }],
  }));
  assertEquals(m.key, "edge/vs");
  assertEquals(m.gateways, ["edge/edgemesh-gateway"]);
  assertEquals(m.http[0].name, "edge/vs#0");
  assertEquals(m.http[0].route, [{
    destination: { namespace: "edge", service: "hostname-lb-svc", port: 12345, subset: undefined },
    weight: 1,
  }]);
  assertEquals(m.http[0].match[0].uri, { kind: "prefix", value: "/" });
});

Deno.test("parseVirtualService() accepts gateways in any position and ns/name form, drops mesh", () => {
  const m = parseVirtualService(
    vs({ gateways: ["mesh", "other/gw", "gw.third.svc.cluster.local"], hosts: ["a.io"], http: [] }),
  );
  assertEquals(m.gateways, ["other/gw", "third/gw"]);
});

Deno.test("parseVirtualService() fills weights, durations, retries, rewrite and header operations", () => {
  const m = parseVirtualService(vs({
    gateways: ["gw"],
    hosts: ["*.example.com"],
    http: [{
      name: "main",
      rewrite: { uri: "/v2/" },
      timeout: "1.5s",
      retries: { attempts: 3, perTryTimeout: "200ms" },
      headers: {
        request: { set: { a: "1" }, add: { b: "2" }, remove: ["c"] },
        response: { remove: ["server"] },
      },
      route: [{ destination: { host: "a.other.svc.cluster.local" }, weight: 70 }, {
        destination: { host: "b", subset: "v2" },
        weight: 30,
      }],
    }],
    tcp: [{ route: [{ destination: { host: "db" } }, { destination: { host: "db2" } }] }],
    tls: [{ match: [{ sniHosts: ["S.example.com"] }], route: [{ destination: { host: "s" } }] }],
  }));
  const r = m.http[0];
  assertEquals(r.name, "main");
  assertEquals([r.timeoutMs, r.retries, r.rewriteUri], [
    1500,
    { attempts: 3, perTryTimeoutMs: 200 },
    "/v2/",
  ]);
  assertEquals(
    r.route.map((
      d,
    ) => [d.destination.namespace, d.destination.service, d.destination.subset, d.weight]),
    [
      ["other", "a", undefined, 70],
      ["edge", "b", "v2", 30],
    ],
  );
  assertEquals(r.requestHeaders, { set: [["a", "1"]], add: [["b", "2"]], remove: ["c"] });
  assertEquals(m.tcp[0].route.map((d) => d.weight), [1, 1], "no weights given: equal split");
  assertEquals(m.tls[0].match[0].sniHosts, ["s.example.com"]);
});

Deno.test("parseVirtualService() rejects malformed resources with the field path", () => {
  const cases: [unknown, string][] = [
    [undefined, "spec"],
    [{ hosts: [] }, "spec.hosts"],
    [
      { hosts: ["*"], http: [{ route: [{ destination: {} }] }] },
      "spec.http[0].route[0].destination.host",
    ],
    [{
      hosts: ["*"],
      http: [{ match: [{ uri: { regex: "([" } }], route: [{ destination: { host: "a" } }] }],
    }, "spec.http[0].match[0].uri.regex"],
    [{
      hosts: ["*"],
      http: [{
        match: [{ uri: { prefix: "/", exact: "/" } }],
        route: [{ destination: { host: "a" } }],
      }],
    }, "spec.http[0].match[0].uri"],
    [
      { hosts: ["*"], http: [{ timeout: "soon", route: [{ destination: { host: "a" } }] }] },
      "spec.http[0].timeout",
    ],
    [
      { hosts: ["*"], http: [{ route: [{ destination: { host: "a" }, weight: -1 }] }] },
      "spec.http[0].route[0].weight",
    ],
    [{ hosts: ["*"], http: [{ route: [] }] }, "spec.http[0].route"],
    [
      { hosts: ["*"], tls: [{ match: [{ port: 443 }], route: [{ destination: { host: "a" } }] }] },
      "spec.tls[0].match[0].sniHosts",
    ],
    [
      { hosts: ["*"], tcp: [{ route: [{ destination: { host: "a", port: { number: 70000 } } }] }] },
      "spec.tcp[0].route[0].destination.port.number",
    ],
  ];
  for (const [spec, field] of cases) {
    throws(() => parseVirtualService(vs(spec)), (err: unknown) => {
      assert(err instanceof VirtualServiceError, String(err));
      assertEquals(err.field, field);
      assert(err.message.includes("edge/vs"));
      return true;
    });
  }
});

Deno.test("helpers: durations, service hosts and gateway references", () => {
  assertEquals([
    parseDurationMs("100ms"),
    parseDurationMs("2m"),
    parseDurationMs("1h"),
    parseDurationMs("x"),
  ], [100, 120000, 3600000, undefined]);
  assertEquals(resolveServiceHost("svc", "ns"), { namespace: "ns", name: "svc" });
  assertEquals(resolveServiceHost("svc.other", "ns"), { namespace: "other", name: "svc" });
  assertEquals(resolveServiceHost("Svc.other.svc.cluster.local.", "ns"), {
    namespace: "other",
    name: "svc",
  });
  assertEquals(gatewayRef("gw", "ns"), "ns/gw");
  assertEquals(gatewayRef("x/gw", "ns"), "x/gw");
});
