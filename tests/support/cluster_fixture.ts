/** Builds Services and EndpointSlices in a `ClusterStore` for proxy/DNS tests. */

import type {
  ClusterStore,
  DestinationRule,
  EndpointSlice,
  Service,
  ServicePort,
} from "../../mod/kube/mod.ts";

export interface FixtureEndpoint {
  ip: string;
  port: number;
  node?: string;
  ready?: boolean;
}

export interface FixtureService {
  namespace?: string;
  name: string;
  clusterIP: string;
  /** Dual-stack: every ClusterIP (default `[clusterIP]`). */
  clusterIPs?: string[];
  ports: (ServicePort & { name: string })[];
  /** Endpoints per service port name. */
  endpoints: FixtureEndpoint[];
  /** Port name the endpoints serve (default: every port, same endpoint port). */
  type?: "ClusterIP" | "NodePort";
  labels?: Record<string, string>;
  sessionAffinity?: "None" | "ClientIP";
  affinityTimeoutSeconds?: number;
  internalTrafficPolicy?: "Cluster" | "Local";
}

/** Upserts the Service and one EndpointSlice; each endpoint serves every service port at its `port`. */
export function putService(store: ClusterStore, f: FixtureService): void {
  const ns = f.namespace ?? "default";
  const svc: Service = {
    metadata: {
      name: f.name,
      namespace: ns,
      labels: f.labels,
      resourceVersion: crypto.randomUUID(),
    },
    spec: {
      type: f.type ?? "ClusterIP",
      clusterIP: f.clusterIP,
      clusterIPs: f.clusterIPs ?? [f.clusterIP],
      ports: f.ports,
      sessionAffinity: f.sessionAffinity,
      sessionAffinityConfig: f.affinityTimeoutSeconds
        ? { clientIP: { timeoutSeconds: f.affinityTimeoutSeconds } }
        : undefined,
      internalTrafficPolicy: f.internalTrafficPolicy,
    },
  };
  store.batch(() => {
    store.upsert("services", svc);
    putEndpoints(store, ns, f.name, f.ports, f.endpoints);
  });
}

export function putEndpoints(
  store: ClusterStore,
  namespace: string,
  name: string,
  ports: (ServicePort & { name: string })[],
  endpoints: FixtureEndpoint[],
): void {
  // Endpoints of different target ports need one slice per port; fixtures use one port value
  // per endpoint for every service port.
  const byPort = new Map<number, FixtureEndpoint[]>();
  for (const e of endpoints) byPort.set(e.port, [...(byPort.get(e.port) ?? []), e]);
  const existing = store.list("endpointslices").filter((s) =>
    s.metadata.namespace === namespace && s.metadata.labels?.["kubernetes.io/service-name"] === name
  );
  store.batch(() => {
    for (const s of existing) store.delete("endpointslices", namespace, s.metadata.name);
    let i = 0;
    for (const [port, eps] of byPort) {
      const slice: EndpointSlice = {
        metadata: {
          name: `${name}-${i++}`,
          namespace,
          labels: { "kubernetes.io/service-name": name },
          resourceVersion: crypto.randomUUID(),
        },
        addressType: "IPv4",
        ports: ports.map((p) => ({ name: p.name, port, protocol: p.protocol ?? "TCP" })),
        endpoints: eps.map((e) => ({
          addresses: [e.ip],
          nodeName: e.node,
          conditions: { ready: e.ready ?? true },
        })),
      };
      store.upsert("endpointslices", slice);
    }
    if (byPort.size === 0) {
      store.upsert("endpointslices", {
        metadata: {
          name: `${name}-0`,
          namespace,
          labels: { "kubernetes.io/service-name": name },
          resourceVersion: crypto.randomUUID(),
        },
        addressType: "IPv4",
        ports: ports.map((p) => ({ name: p.name, port: 1, protocol: p.protocol ?? "TCP" })),
        endpoints: [],
      });
    }
  });
}

export function putDestinationRule(
  store: ClusterStore,
  namespace: string,
  name: string,
  spec: unknown,
): void {
  const dr: DestinationRule = {
    metadata: { name, namespace, resourceVersion: crypto.randomUUID() },
    spec: spec as DestinationRule["spec"],
  };
  store.upsert("destinationrules", dr);
}
