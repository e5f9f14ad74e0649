/** Kubernetes objects describing a topology's cluster, for the metaservers. */

import { stringify } from "yaml";
import type { Topology } from "../topology.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

/** A Node with an InternalIP and a Ready condition. */
export function nodeObject(
  name: string,
  ip: string,
  opts: { ready?: "True" | "False" | "Unknown"; labels?: Record<string, string> } = {},
): Obj {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...opts.labels } },
    status: {
      addresses: [{ type: "InternalIP", address: ip }, { type: "Hostname", address: name }],
      conditions: [{ type: "Ready", status: opts.ready ?? "True", reason: "KubeletReady" }],
    },
  };
}

/** Node objects for every node and relay of the topology. */
export function clusterNodes(topo: Topology, labels: Record<string, string> = {}): Obj[] {
  return [...topo.names("relay"), ...topo.names("node")].map((n) =>
    nodeObject(n, topo.ip(n), { labels })
  );
}

export interface ServicePortSpec {
  name: string;
  port: number;
  targetPort: number;
  protocol?: "TCP" | "UDP";
}

export interface ServiceSpec {
  namespace?: string;
  name: string;
  /** From 198.19.0.0/16. */
  clusterIP: string;
  ports: ServicePortSpec[];
  /** Endpoints: the node they run on and their address (hostPort style: the node's IP). */
  endpoints: { node: string; ip: string; ready?: boolean }[];
}

/** A Service and its EndpointSlice. */
export function serviceObjects(s: ServiceSpec): Obj[] {
  const namespace = s.namespace ?? "default";
  return [
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { namespace, name: s.name },
      spec: {
        type: "ClusterIP",
        clusterIP: s.clusterIP,
        clusterIPs: [s.clusterIP],
        ports: s.ports.map((p) => ({
          name: p.name,
          port: p.port,
          targetPort: p.targetPort,
          protocol: p.protocol ?? "TCP",
        })),
      },
    },
    {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        namespace,
        name: `${s.name}-e2e`,
        labels: { "kubernetes.io/service-name": s.name },
      },
      addressType: "IPv4",
      ports: s.ports.map((p) => ({
        name: p.name,
        port: p.targetPort,
        protocol: p.protocol ?? "TCP",
      })),
      endpoints: s.endpoints.map((e) => ({
        addresses: [e.ip],
        nodeName: e.node,
        conditions: { ready: e.ready ?? true },
      })),
    },
  ];
}

/** The `kubeedge/edgemesh-agent-cfg` ConfigMap holding a cluster-wide config layer. */
export function agentConfigMap(config: Obj): Obj {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { namespace: "kubeedge", name: "edgemesh-agent-cfg" },
    data: { "edgemesh-agent.yaml": stringify(config) },
  };
}

/** `relayNodes` entries for relays of the topology (advertised on their WAN address). */
export function relayNodes(topo: Topology, names = topo.names("relay")): Obj[] {
  return names.map((n) => ({ nodeName: n, advertiseAddress: [topo.ip(n)] }));
}
