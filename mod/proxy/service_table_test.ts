import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ClusterStore, StoreCatalog } from "../kube/mod.ts";
import { portKind } from "./app_protocol.ts";
import { buildServiceTable, SERVICE_PROXY_NAME_LABEL } from "./service_table.ts";

function store(): ClusterStore {
  const s = new ClusterStore();
  const svc = (name: string, spec: Record<string, unknown>, labels?: Record<string, string>) =>
    s.upsert("services", {
      metadata: { name, namespace: "ns", labels },
      spec: { clusterIP: "198.19.0.1", ...spec },
    });
  svc("web", {
    type: "NodePort",
    sessionAffinity: "ClientIP",
    ports: [
      { name: "http-main", port: 80, protocol: "TCP", nodePort: 30080 },
      { name: "sctp", port: 9, protocol: "SCTP" },
      { name: "dns", port: 53, protocol: "UDP" },
    ],
  });
  svc("headless", { clusterIP: "None", ports: [{ port: 80 }] });
  svc("labelled", { ports: [{ port: 80 }] }, { [SERVICE_PROXY_NAME_LABEL]: "other" });
  s.upsert("endpointslices", {
    metadata: { name: "web-1", namespace: "ns", labels: { "kubernetes.io/service-name": "web" } },
    addressType: "IPv4",
    ports: [{ name: "http-main", port: 8080, protocol: "TCP" }, {
      name: "dns",
      port: 5353,
      protocol: "UDP",
    }],
    endpoints: [
      { addresses: ["10.0.0.1"], nodeName: "n1", conditions: { ready: true } },
      { addresses: ["10.0.0.2"], nodeName: "n2", conditions: { ready: false } },
    ],
  });
  return s;
}

Deno.test("buildServiceTable() skips headless, labelled and SCTP ports, and reads endpoints per port", () => {
  const rejected: string[] = [];
  const table = buildServiceTable(new StoreCatalog(store()), {
    filterMode: "FilterIfLabelExists",
    served: (ep) => ep.ready,
    onRejected: (key, reason) => rejected.push(`${key}: ${reason}`),
  });
  assertEquals(table.map((p) => p.key), ["ns/web:80/tcp", "ns/web:53/udp"]);
  assertEquals(rejected, ["ns/web:9/sctp: SCTP is not supported"]);
  const [http, dns] = table;
  assertEquals(http.kind, "http");
  assertEquals(http.nodePort, 30080);
  assertEquals(http.clientIpAffinityMs, 10800_000);
  assertEquals(http.endpoints.map((e) => [e.id, e.node, e.served]), [
    ["10.0.0.1:8080", "n1", true],
    ["10.0.0.2:8080", "n2", false],
  ]);
  assertEquals(dns.kind, "udp");
  assertEquals(dns.endpoints.map((e) => e.id), ["10.0.0.1:5353", "10.0.0.2:5353"]);
});

Deno.test("buildServiceTable() with FilterIfLabelDoesNotExists serves only labelled services", () => {
  const table = buildServiceTable(new StoreCatalog(store()), {
    filterMode: "FilterIfLabelDoesNotExists",
    served: () => true,
    onRejected: () => {},
  });
  assertEquals(table.map((p) => p.key), ["ns/labelled:80/tcp"]);
});

Deno.test("portKind() follows appProtocol, then the port name rule <protocol>[-<suffix>]", () => {
  const cases: [string, string | undefined, "TCP" | "UDP", string][] = [
    ["http", undefined, "TCP", "http"],
    ["http-web", undefined, "TCP", "http"],
    ["ws", undefined, "TCP", "http"],
    ["https-x", undefined, "TCP", "tls"],
    ["tls", undefined, "TCP", "tls"],
    ["grpc", undefined, "TCP", "tcp"],
    ["http2", undefined, "TCP", "tcp"],
    ["web", "http", "TCP", "http"],
    ["http", "tcp", "TCP", "tcp"],
    ["", "kubernetes.io/ws", "TCP", "http"],
    ["", undefined, "TCP", "tcp"],
    ["http", undefined, "UDP", "udp"],
  ];
  for (const [name, appProtocol, protocol, want] of cases) {
    assertEquals(portKind({ name, appProtocol, protocol }), want, `${name}/${appProtocol}`);
  }
});
