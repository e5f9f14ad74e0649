/** The service table: which service ports the proxy serves, with their endpoints. */

import type { LbEndpoint } from "../lb/mod.ts";
import type { CatalogEndpoint, CatalogService, ServiceCatalog } from "../kube/mod.ts";
import { type PortKind, portKind } from "./app_protocol.ts";
import type { ServiceFilterMode } from "./options.ts";

export const SERVICE_PROXY_NAME_LABEL = "service.edgemesh.kubeedge.io/service-proxy-name";

export interface ProxyEndpoint extends LbEndpoint {
  /** "ip:port" ("[v6]:port" for IPv6). */
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  readonly node?: string;
  readonly ready: boolean;
  /** Per the serving rule (readiness and the health vote). */
  readonly served: boolean;
}

export interface ProxyPort {
  /** "namespace/name:port/tcp" — stable identity of a service port. */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly portName: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly kind: PortKind;
  readonly nodePort?: number;
  readonly clusterIPs: readonly string[];
  /** Every endpoint, served or not (status shows both). */
  readonly endpoints: readonly ProxyEndpoint[];
  /** Service `sessionAffinity: ClientIP` timeout, when set. */
  readonly clientIpAffinityMs?: number;
  /** `internalTrafficPolicy: Local`: only endpoints on this node. */
  readonly localOnly: boolean;
}

export interface TableInputs {
  filterMode: ServiceFilterMode;
  served(ep: CatalogEndpoint): boolean;
  /** Reports a skipped port once per call site decision (SCTP, …). */
  onRejected(key: string, reason: string): void;
}

/** True when the proxy handles this service (not headless, not ExternalName, not filtered). */
export function serviceProxied(svc: CatalogService, mode: ServiceFilterMode): boolean {
  if (svc.headless || svc.type === "ExternalName" || svc.clusterIPs.length === 0) return false;
  const labelled = SERVICE_PROXY_NAME_LABEL in svc.labels;
  return mode === "FilterIfLabelDoesNotExists" ? labelled : !labelled;
}

export function endpointId(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function buildServiceTable(catalog: ServiceCatalog, inputs: TableInputs): ProxyPort[] {
  const out: ProxyPort[] = [];
  for (const svc of catalog.services()) {
    if (!serviceProxied(svc, inputs.filterMode)) continue;
    for (const p of svc.ports) {
      const key = `${svc.namespace}/${svc.name}:${p.port}/${p.protocol.toLowerCase()}`;
      if (p.protocol === "SCTP") {
        inputs.onRejected(key, "SCTP is not supported");
        continue;
      }
      const endpoints: ProxyEndpoint[] = [];
      const seen = new Set<string>();
      for (const ep of svc.endpoints) {
        let ep_port = ep.ports[p.name];
        if (!ep_port && p.name === "") {
          const all = Object.values(ep.ports);
          if (all.length === 1) ep_port = all[0];
        }
        if (!ep_port || ep_port.protocol !== p.protocol) continue;
        const id = endpointId(ep.ip, ep_port.port);
        if (seen.has(id)) continue;
        seen.add(id);
        endpoints.push({
          id,
          ip: ep.ip,
          port: ep_port.port,
          node: ep.nodeName,
          ready: ep.ready,
          served: inputs.served(ep),
        });
      }
      out.push({
        key,
        namespace: svc.namespace,
        name: svc.name,
        portName: p.name,
        port: p.port,
        protocol: p.protocol === "UDP" ? "udp" : "tcp",
        kind: portKind(p),
        nodePort: svc.type === "NodePort" || svc.type === "LoadBalancer" ? p.nodePort : undefined,
        clusterIPs: svc.clusterIPs,
        endpoints,
        clientIpAffinityMs: svc.sessionAffinity === "ClientIP"
          ? svc.sessionAffinityTimeoutSeconds * 1000
          : undefined,
        localOnly: svc.internalTrafficPolicy === "Local",
      });
    }
  }
  return out;
}
