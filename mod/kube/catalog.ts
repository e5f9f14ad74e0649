/**
 * The service catalog: Services joined with their endpoints (EndpointSlices when the source
 * has them, else core/v1 Endpoints), in the shape DNS, proxy and gateway consume.
 */

import type { StoreReader } from "./store.ts";
import type { Endpoints, EndpointSlice, Service } from "./types.ts";

export type PortProtocol = "TCP" | "UDP" | "SCTP";

export interface CatalogPort {
  name: string;
  port: number;
  protocol: PortProtocol;
  targetPort?: number | string;
  nodePort?: number;
  appProtocol?: string;
}

export interface CatalogEndpoint {
  /** The endpoint's IP (one entry per address; an endpoint with two addresses appears twice). */
  ip: string;
  /** Resolved ports by service port name ("" for the unnamed port). */
  ports: Record<string, { port: number; protocol: PortProtocol }>;
  nodeName?: string;
  hostname?: string;
  zone?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  targetRef?: { kind?: string; name?: string; namespace?: string };
}

export interface CatalogService {
  namespace: string;
  name: string;
  type: "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";
  /** ClusterIPs ("None" removed); empty for headless and ExternalName services. */
  clusterIPs: string[];
  headless: boolean;
  externalName?: string;
  ports: CatalogPort[];
  endpoints: CatalogEndpoint[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  sessionAffinity: "None" | "ClientIP";
  sessionAffinityTimeoutSeconds: number;
  internalTrafficPolicy: "Cluster" | "Local";
  publishNotReadyAddresses: boolean;
  /** Which source gave the endpoints. */
  endpointSource: "endpointslices" | "endpoints" | "none";
}

/** What DNS, proxy and gateway read. */
export interface ServiceCatalog {
  services(): readonly CatalogService[];
  get(namespace: string, name: string): CatalogService | undefined;
  /** The service (and port list) owning a ClusterIP. */
  byClusterIP(ip: string): CatalogService | undefined;
  /** Called after any change that may alter the catalog (coalesced per store batch). */
  onChange(listener: () => void): () => void;
}

const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** Builds the catalog from the store, recomputing lazily when the store version moves. */
export class StoreCatalog implements ServiceCatalog {
  #version = -1;
  #list: CatalogService[] = [];
  #byName = new Map<string, CatalogService>();
  #byIP = new Map<string, CatalogService>();
  #listeners = new Set<() => void>();

  constructor(private readonly store: StoreReader) {
    store.on("batch", ({ kinds }) => {
      if (kinds.has("services") || kinds.has("endpointslices") || kinds.has("endpoints")) {
        for (const l of [...this.#listeners]) l();
      }
    });
  }

  #refresh(): void {
    if (this.#version === this.store.version) return;
    this.#version = this.store.version;
    const slicesBySvc = new Map<string, EndpointSlice[]>();
    for (const s of this.store.list("endpointslices")) {
      const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
      if (!svc) continue;
      const key = `${s.metadata.namespace ?? ""}/${svc}`;
      let arr = slicesBySvc.get(key);
      if (!arr) slicesBySvc.set(key, arr = []);
      arr.push(s);
    }
    const list: CatalogService[] = [];
    const byName = new Map<string, CatalogService>();
    const byIP = new Map<string, CatalogService>();
    for (const svc of this.store.list("services")) {
      const ns = svc.metadata.namespace ?? "default";
      const key = `${ns}/${svc.metadata.name}`;
      const slices = slicesBySvc.get(key);
      const eps = slices ? undefined : this.store.get("endpoints", ns, svc.metadata.name);
      const entry = toCatalogService(svc, slices, eps);
      list.push(entry);
      byName.set(key, entry);
      for (const ip of entry.clusterIPs) byIP.set(ip, entry);
    }
    list.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    this.#list = list;
    this.#byName = byName;
    this.#byIP = byIP;
  }

  services(): readonly CatalogService[] {
    this.#refresh();
    return this.#list;
  }
  get(namespace: string, name: string): CatalogService | undefined {
    this.#refresh();
    return this.#byName.get(`${namespace}/${name}`);
  }
  byClusterIP(ip: string): CatalogService | undefined {
    this.#refresh();
    return this.#byIP.get(ip);
  }
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

function protocolOf(p: string | undefined): PortProtocol {
  return p === "UDP" || p === "SCTP" ? p : "TCP";
}

export function toCatalogService(
  svc: Service,
  slices: readonly EndpointSlice[] | undefined,
  endpoints: Endpoints | undefined,
): CatalogService {
  const spec = svc.spec ?? {};
  const type = spec.type ?? "ClusterIP";
  const rawIPs = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  const headless = rawIPs.includes("None") && type !== "ExternalName";
  const clusterIPs = type === "ExternalName" ? [] : rawIPs.filter((ip) => ip && ip !== "None");
  const ports: CatalogPort[] = (spec.ports ?? []).filter((p) => Number.isInteger(p?.port)).map((
    p,
  ) => ({
    name: p.name ?? "",
    port: p.port,
    protocol: protocolOf(p.protocol),
    targetPort: p.targetPort,
    nodePort: p.nodePort,
    appProtocol: p.appProtocol,
  }));
  const out: CatalogEndpoint[] = [];
  let endpointSource: CatalogService["endpointSource"] = "none";
  if (slices) {
    endpointSource = "endpointslices";
    const seen = new Set<string>();
    for (const slice of slices) {
      if (slice.addressType === "FQDN") continue;
      const slicePorts: CatalogEndpoint["ports"] = {};
      for (const p of slice.ports ?? []) {
        if (Number.isInteger(p?.port)) {
          slicePorts[p.name ?? ""] = { port: p.port, protocol: protocolOf(p.protocol) };
        }
      }
      for (const e of slice.endpoints ?? []) {
        const c = e.conditions ?? {};
        // Per the EndpointSlice API, a nil ready condition means ready.
        const ready = c.ready ?? true;
        for (const ip of e.addresses ?? []) {
          const k = `${ip}|${JSON.stringify(slicePorts)}`;
          if (typeof ip !== "string" || seen.has(k)) continue;
          seen.add(k);
          out.push({
            ip,
            ports: slicePorts,
            nodeName: e.nodeName,
            hostname: e.hostname,
            zone: e.zone,
            ready,
            serving: c.serving ?? ready,
            terminating: c.terminating ?? false,
            targetRef: e.targetRef,
          });
        }
      }
    }
  } else if (endpoints) {
    endpointSource = "endpoints";
    for (const subset of endpoints.subsets ?? []) {
      const subsetPorts: CatalogEndpoint["ports"] = {};
      for (const p of subset.ports ?? []) {
        if (Number.isInteger(p?.port)) {
          subsetPorts[p.name ?? ""] = { port: p.port, protocol: protocolOf(p.protocol) };
        }
      }
      for (
        const [list, ready] of [[subset.addresses, true], [
          subset.notReadyAddresses,
          false,
        ]] as const
      ) {
        for (const a of list ?? []) {
          if (typeof a?.ip !== "string") continue;
          out.push({
            ip: a.ip,
            ports: subsetPorts,
            nodeName: a.nodeName,
            hostname: a.hostname,
            ready,
            serving: ready,
            terminating: false,
            targetRef: a.targetRef,
          });
        }
      }
    }
  }
  return {
    namespace: svc.metadata.namespace ?? "default",
    name: svc.metadata.name,
    type,
    clusterIPs,
    headless,
    externalName: type === "ExternalName" ? spec.externalName : undefined,
    ports,
    endpoints: out,
    labels: svc.metadata.labels ?? {},
    annotations: svc.metadata.annotations ?? {},
    sessionAffinity: spec.sessionAffinity === "ClientIP" ? "ClientIP" : "None",
    sessionAffinityTimeoutSeconds: spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800,
    internalTrafficPolicy: spec.internalTrafficPolicy === "Local" ? "Local" : "Cluster",
    publishNotReadyAddresses: spec.publishNotReadyAddresses ?? false,
    endpointSource,
  };
}
