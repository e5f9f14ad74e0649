/** Where each store kind lives in the Kubernetes API, and which manifest kinds map to it. */

import type { Kind } from "./types.ts";

export interface KindResource {
  kind: Kind;
  /** The object `kind` ("Service"). */
  objectKind: string;
  /** "" for the core group. */
  group: string;
  /** Versions to try, preferred first. */
  versions: readonly string[];
  namespaced: boolean;
}

export const KIND_RESOURCES: Readonly<Record<Kind, KindResource>> = {
  services: {
    kind: "services",
    objectKind: "Service",
    group: "",
    versions: ["v1"],
    namespaced: true,
  },
  endpoints: {
    kind: "endpoints",
    objectKind: "Endpoints",
    group: "",
    versions: ["v1"],
    namespaced: true,
  },
  endpointslices: {
    kind: "endpointslices",
    objectKind: "EndpointSlice",
    group: "discovery.k8s.io",
    versions: ["v1"],
    namespaced: true,
  },
  nodes: { kind: "nodes", objectKind: "Node", group: "", versions: ["v1"], namespaced: false },
  pods: { kind: "pods", objectKind: "Pod", group: "", versions: ["v1"], namespaced: true },
  configmaps: {
    kind: "configmaps",
    objectKind: "ConfigMap",
    group: "",
    versions: ["v1"],
    namespaced: true,
  },
  secrets: { kind: "secrets", objectKind: "Secret", group: "", versions: ["v1"], namespaced: true },
  destinationrules: {
    kind: "destinationrules",
    objectKind: "DestinationRule",
    group: "networking.istio.io",
    versions: ["v1beta1", "v1alpha3"],
    namespaced: true,
  },
  gateways: {
    kind: "gateways",
    objectKind: "Gateway",
    group: "networking.istio.io",
    versions: ["v1beta1", "v1alpha3"],
    namespaced: true,
  },
  virtualservices: {
    kind: "virtualservices",
    objectKind: "VirtualService",
    group: "networking.istio.io",
    versions: ["v1beta1", "v1alpha3"],
    namespaced: true,
  },
};

/** Cluster-wide collection paths to try, preferred version first. */
export function collectionPaths(kind: Kind): string[] {
  const r = KIND_RESOURCES[kind];
  return r.versions.map((v) => r.group ? `/apis/${r.group}/${v}/${kind}` : `/api/${v}/${kind}`);
}

/**
 * The store kind of a manifest object from its apiVersion and kind, or undefined when we do
 * not keep that kind. Istio versions other than the ones we list are accepted too (the
 * shapes we read did not change).
 */
export function kindOfManifest(apiVersion: unknown, objectKind: unknown): Kind | undefined {
  if (typeof apiVersion !== "string" || typeof objectKind !== "string") return undefined;
  const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
  for (const r of Object.values(KIND_RESOURCES)) {
    if (r.objectKind === objectKind && r.group === group) return r.kind;
  }
  return undefined;
}
