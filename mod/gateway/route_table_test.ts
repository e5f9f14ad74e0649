import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ClusterStore, type Gateway, type VirtualService } from "../kube/mod.ts";
import { memoryLogger } from "../log/mod.ts";
import { RouteTableBuilder } from "./route_table.ts";

function gw(name: string, servers: unknown[], selector?: Record<string, string>): Gateway {
  return { metadata: { name, namespace: "ns" }, spec: { selector, servers } } as Gateway;
}
function vs(name: string, spec: unknown): VirtualService {
  return { metadata: { name, namespace: "ns" }, spec } as VirtualService;
}
const facts = (path: string) => ({
  path,
  query: new URLSearchParams(),
  method: "GET",
  authority: "",
  header: () => undefined,
  port: 80,
});

Deno.test("RouteTableBuilder selects Gateways by selector against node labels (options and Node object)", () => {
  const store = new ClusterStore();
  const { logger } = memoryLogger();
  let labels: Record<string, string> = { role: "edge" };
  const b = new RouteTableBuilder(store, logger, { nodeLabels: () => labels });
  store.upsert("gateways", gw("all", [{ hosts: ["*"], port: { number: 80, protocol: "HTTP" } }]));
  store.upsert(
    "gateways",
    gw("edge", [{ hosts: ["*"], port: { number: 81, protocol: "HTTP" } }], { role: "edge" }),
  );
  store.upsert(
    "gateways",
    gw("cloud", [{ hosts: ["*"], port: { number: 82, protocol: "HTTP" } }], { role: "cloud" }),
  );
  assertEquals([...b.build().plans.keys()].sort(), [80, 81]);
  labels = { role: "cloud" };
  assertEquals([...b.build().plans.keys()].sort(), [80, 82]);
});

Deno.test("RouteTableBuilder maps protocols and TLS modes to listener kinds and reports bad servers once", () => {
  const store = new ClusterStore();
  const { logger, lines } = memoryLogger();
  const b = new RouteTableBuilder(store, logger, { nodeLabels: () => ({}) });
  store.upsert(
    "gateways",
    gw("g", [
      { hosts: ["*"], port: { number: 1, protocol: "HTTP" } },
      {
        hosts: ["*"],
        port: { number: 2, protocol: "HTTP" },
        tls: { mode: "MUTUAL", credentialName: "s" },
      },
      {
        hosts: ["*"],
        port: { number: 3, protocol: "HTTPS" },
        tls: { mode: "SIMPLE", credentialName: "other/s" },
      },
      { hosts: ["*"], port: { number: 4, protocol: "TLS" }, tls: { mode: "PASSTHROUGH" } },
      { hosts: ["*"], port: { number: 5, protocol: "TCP" } },
      { hosts: ["*"], port: { number: 6, protocol: "UDP" } },
      { hosts: ["*"], port: { number: 7, protocol: "HTTPS" } },
      { hosts: ["*"], port: { number: 1, protocol: "TCP" } },
    ]),
  );
  const t = b.build();
  assertEquals([...t.plans.values()].map((p) => [p.port, p.kind]), [
    [1, "http"],
    [2, "https"],
    [3, "https"],
    [4, "tls-passthrough"],
    [5, "tcp"],
  ]);
  assertEquals(t.plans.get(2)!.servers[0].tls, {
    mode: "MUTUAL",
    credential: "ns/s",
    minProtocolVersion: undefined,
  });
  assertEquals(t.plans.get(3)!.servers[0].tls!.credential, "other/s");
  assertEquals(t.problems.length, 3, t.problems.join("\n"));
  b.build();
  assertEquals(lines.filter((l) => l.level === "error").length, 3, "each problem logged once");
});

Deno.test("RouteTable binds VirtualServices by gateway and host; exact hosts win over wildcards", () => {
  const store = new ClusterStore();
  const { logger } = memoryLogger();
  const b = new RouteTableBuilder(store, logger, { nodeLabels: () => ({}) });
  store.upsert(
    "gateways",
    gw("g", [{ hosts: ["ns/*.example.com"], port: { number: 80, protocol: "HTTP" } }]),
  );
  store.upsert(
    "virtualservices",
    vs("wild", {
      gateways: ["g"],
      hosts: ["*.example.com"],
      http: [{ route: [{ destination: { host: "wild" } }] }],
    }),
  );
  store.upsert(
    "virtualservices",
    vs("exact", {
      gateways: ["ns/g"],
      hosts: ["a.example.com"],
      http: [{ match: [{ uri: { prefix: "/x" } }], route: [{ destination: { host: "exact" } }] }],
    }),
  );
  store.upsert(
    "virtualservices",
    vs("unbound", {
      gateways: ["g"],
      hosts: ["other.org"],
      http: [{ route: [{ destination: { host: "u" } }] }],
    }),
  );
  store.upsert(
    "virtualservices",
    vs("mesh-only", { hosts: ["*"], http: [{ route: [{ destination: { host: "m" } }] }] }),
  );
  const t = b.build();
  assertEquals(t.virtualServices.map((v) => v.key).sort(), ["ns/exact", "ns/wild"]);
  const plan = t.plans.get(80)!;
  assertEquals(t.matchHttp(plan, "a.example.com", facts("/x"))?.vs.key, "ns/exact");
  assertEquals(
    t.matchHttp(plan, "a.example.com", facts("/y"))?.vs.key,
    "ns/wild",
    "falls through to the next VirtualService",
  );
  assertEquals(t.matchHttp(plan, "b.example.com", facts("/x"))?.vs.key, "ns/wild");
  assert(
    t.matchHttp(plan, "other.org", facts("/")) === undefined,
    "server hosts do not admit other.org",
  );
});
