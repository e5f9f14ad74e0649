/**
 * The resource table of the test metaserver and the discovery documents built from it
 * (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`, `/version`), enough for
 * `kubectl` and `@kubernetes/client-node`.
 */

export interface ResourceDef {
  /** "" for the core group. */
  group: string;
  /** Versions served, preferred first. Objects are stored once and shown in any of them. */
  versions: string[];
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
}

export const RESOURCES: readonly ResourceDef[] = [
  {
    group: "",
    versions: ["v1"],
    plural: "services",
    singular: "service",
    kind: "Service",
    namespaced: true,
    shortNames: ["svc"],
  },
  {
    group: "",
    versions: ["v1"],
    plural: "endpoints",
    singular: "endpoints",
    kind: "Endpoints",
    namespaced: true,
    shortNames: ["ep"],
  },
  {
    group: "",
    versions: ["v1"],
    plural: "nodes",
    singular: "node",
    kind: "Node",
    namespaced: false,
    shortNames: ["no"],
  },
  {
    group: "",
    versions: ["v1"],
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    namespaced: true,
    shortNames: ["po"],
  },
  {
    group: "",
    versions: ["v1"],
    plural: "configmaps",
    singular: "configmap",
    kind: "ConfigMap",
    namespaced: true,
    shortNames: ["cm"],
  },
  {
    group: "",
    versions: ["v1"],
    plural: "secrets",
    singular: "secret",
    kind: "Secret",
    namespaced: true,
    shortNames: [],
  },
  {
    group: "",
    versions: ["v1"],
    plural: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    namespaced: false,
    shortNames: ["ns"],
  },
  {
    group: "discovery.k8s.io",
    versions: ["v1"],
    plural: "endpointslices",
    singular: "endpointslice",
    kind: "EndpointSlice",
    namespaced: true,
    shortNames: [],
  },
  {
    group: "networking.istio.io",
    versions: ["v1beta1", "v1alpha3"],
    plural: "destinationrules",
    singular: "destinationrule",
    kind: "DestinationRule",
    namespaced: true,
    shortNames: ["dr"],
  },
  {
    group: "networking.istio.io",
    versions: ["v1beta1", "v1alpha3"],
    plural: "gateways",
    singular: "gateway",
    kind: "Gateway",
    namespaced: true,
    shortNames: ["gw"],
  },
  {
    group: "networking.istio.io",
    versions: ["v1beta1", "v1alpha3"],
    plural: "virtualservices",
    singular: "virtualservice",
    kind: "VirtualService",
    namespaced: true,
    shortNames: ["vs"],
  },
];

const VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"];

/** `group/plural` ("services" for core): the storage key of a resource. */
export function resourceKey(def: Pick<ResourceDef, "group" | "plural">): string {
  return def.group ? `${def.group}/${def.plural}` : def.plural;
}

export function apiVersionOf(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

export function findResource(
  group: string,
  version: string,
  plural: string,
): ResourceDef | undefined {
  return RESOURCES.find((r) =>
    r.group === group && r.plural === plural && r.versions.includes(version)
  );
}

export function findResourceByKind(apiVersion: string, kind: string): ResourceDef | undefined {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return RESOURCES.find((r) =>
    r.group === group && r.kind === kind && r.versions.includes(version)
  );
}

export function apiVersions(hostPort: string): unknown {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: hostPort }],
  };
}

/** `/apis`, omitting groups that are switched off. */
export function apiGroupList(disabled: ReadonlySet<string>): unknown {
  const groups = new Map<string, string[]>();
  for (const r of RESOURCES) {
    if (!r.group || disabled.has(r.group)) continue;
    groups.set(r.group, r.versions);
  }
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: [...groups].map(([name, versions]) => apiGroup(name, versions)),
  };
}

export function apiGroup(name: string, versions: string[]): Record<string, unknown> {
  return {
    kind: "APIGroup",
    apiVersion: "v1",
    name,
    versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
    preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
  };
}

export function groupVersions(group: string): string[] | undefined {
  return RESOURCES.find((r) => r.group === group)?.versions;
}

/** `/api/v1` or `/apis/<group>/<version>`, or undefined when nothing is served there. */
export function apiResourceList(group: string, version: string): unknown {
  const defs = RESOURCES.filter((r) => r.group === group && r.versions.includes(version));
  if (defs.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const r of defs) {
    resources.push({
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: VERBS,
      shortNames: r.shortNames.length ? r.shortNames : undefined,
    });
    if (r.plural === "nodes" || r.plural === "pods" || r.plural === "services") {
      resources.push({
        name: `${r.plural}/status`,
        singularName: "",
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: ["get", "patch", "update"],
      });
    }
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: apiVersionOf(group, version),
    resources,
  };
}

export const VERSION_INFO = {
  major: "1",
  minor: "29",
  gitVersion: "v1.29.0-edgemesh-test",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.21.0",
  compiler: "gc",
  platform: "linux/amd64",
};

/** A Kubernetes `Status` failure object. */
export function statusObject(
  code: number,
  reason: string,
  message: string,
): Record<string, unknown> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}
