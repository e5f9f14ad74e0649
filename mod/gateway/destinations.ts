/**
 * Resolves a route destination (service, port, subset) to the endpoints that may serve it,
 * with the picker chosen by the DestinationRule.
 */

import { endpointServed, type HealthView } from "../contracts/mod.ts";
import {
  type CatalogService,
  type DestinationRule,
  type LoadBalancerSettings,
  nodeCloudNotReady,
  type ServiceCatalog,
  type StoreReader,
} from "../kube/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Destination } from "./model.ts";
import { resolveServiceHost } from "./parse_virtual_service.ts";
import type { EndpointPicker, GatewayEndpoint, PickerFactory } from "./picker.ts";

export interface ResolvedDestination {
  /** `ns/service:port[/subset]` */
  key: string;
  endpoints: GatewayEndpoint[];
  picker: EndpointPicker;
}

export interface DestinationResolverDeps {
  catalog: ServiceCatalog;
  store: StoreReader;
  health: HealthView;
  pickers: PickerFactory;
  log: Logger;
}

/** Why a destination has no endpoint (becomes a 503 with this text). */
export class NoEndpointReason {
  constructor(readonly message: string) {}
}

export class DestinationResolver {
  #pickers = new Map<string, { sig: string; picker: EndpointPicker }>();
  #warned = new Set<string>();
  #podVersion = -1;
  #podLabels = new Map<string, Record<string, string>>();

  constructor(private readonly deps: DestinationResolverDeps) {}

  resolve(dest: Destination): ResolvedDestination | NoEndpointReason {
    const { catalog } = this.deps;
    const svc = catalog.get(dest.namespace, dest.service);
    const name = `${dest.namespace}/${dest.service}`;
    if (!svc) return new NoEndpointReason(`service ${name} not found`);
    const svcPort = dest.port !== undefined
      ? svc.ports.find((p) => p.port === dest.port && p.protocol === "TCP")
      : svc.ports.length === 1
      ? svc.ports[0]
      : undefined;
    if (!svcPort) {
      return new NoEndpointReason(
        dest.port !== undefined
          ? `service ${name} has no TCP port ${dest.port}`
          : `service ${name} has several ports; the route must name one`,
      );
    }
    const key = `${name}:${svcPort.port}${dest.subset ? `/${dest.subset}` : ""}`;
    const dr = this.#destinationRule(svc);
    let policy: LoadBalancerSettings | undefined = dr?.spec?.trafficPolicy?.portLevelSettings
      ?.find((s) => s.port?.number === svcPort.port)?.loadBalancer ??
      dr?.spec?.trafficPolicy?.loadBalancer;
    let subsetLabels: Record<string, string> | undefined;
    if (dest.subset) {
      const subset = dr?.spec?.subsets?.find((s) => s.name === dest.subset);
      if (!subset) {
        return new NoEndpointReason(
          `subset "${dest.subset}" of ${name} is not defined by a DestinationRule`,
        );
      }
      subsetLabels = subset.labels ?? {};
      policy = subset.trafficPolicy?.loadBalancer ?? policy;
    }
    const cloudNotReady = (node: string) => nodeCloudNotReady(this.deps.store, node);
    let candidates = svc.endpoints.filter((ep) =>
      endpointServed(
        { ready: ep.ready, nodeName: ep.nodeName },
        this.deps.health,
        cloudNotReady,
      )
    );
    if (subsetLabels) candidates = this.#filterSubset(candidates, subsetLabels, key, svc.namespace);
    const endpoints: GatewayEndpoint[] = [];
    for (const ep of candidates) {
      const p = ep.ports[svcPort.name]?.port ??
        (typeof svcPort.targetPort === "number" ? svcPort.targetPort : undefined) ??
        (svc.endpointSource === "none" ? undefined : svcPort.port);
      if (p === undefined) continue;
      endpoints.push({ ip: ep.ip, port: p, nodeName: ep.nodeName, id: `${ep.ip}:${p}` });
    }
    return { key, endpoints, picker: this.#picker(key, policy) };
  }

  #picker(key: string, policy: LoadBalancerSettings | undefined): EndpointPicker {
    const sig = JSON.stringify(policy ?? null);
    const have = this.#pickers.get(key);
    if (have && have.sig === sig) return have.picker;
    const picker = this.deps.pickers(key, policy);
    this.#pickers.set(key, { sig, picker });
    return picker;
  }

  #destinationRule(svc: CatalogService): DestinationRule | undefined {
    let byName: DestinationRule | undefined;
    for (const dr of this.deps.store.list("destinationrules")) {
      const ns = dr.metadata.namespace ?? "default";
      if (dr.spec?.host) {
        const h = resolveServiceHost(dr.spec.host, ns);
        if (h.namespace === svc.namespace && h.name === svc.name) return dr;
      }
      // EdgeMesh's convention: a DestinationRule named like its Service.
      if (ns === svc.namespace && dr.metadata.name === svc.name) byName = dr;
    }
    return byName;
  }

  #filterSubset(
    eps: CatalogService["endpoints"],
    labels: Record<string, string>,
    key: string,
    namespace: string,
  ): CatalogService["endpoints"] {
    this.#refreshPods();
    let known = 0;
    const out = eps.filter((ep) => {
      const podKey = ep.targetRef?.kind === "Pod" && ep.targetRef.name
        ? `${ep.targetRef.namespace ?? namespace}/${ep.targetRef.name}`
        : undefined;
      const podLabels = (podKey ? this.#podLabels.get(podKey) : undefined) ??
        this.#podLabels.get(ep.ip);
      if (!podLabels) return false;
      known++;
      return Object.entries(labels).every(([k, v]) => podLabels[k] === v);
    });
    if (known > 0 || eps.length === 0) return out;
    if (!this.#warned.has(key) && this.#warned.size < 1000) {
      this.#warned.add(key);
      this.deps.log.warn("subset ignored: pod labels of its endpoints are unknown", {
        destination: key,
      });
    }
    return eps;
  }

  #refreshPods(): void {
    if (this.#podVersion === this.deps.store.version) return;
    this.#podVersion = this.deps.store.version;
    const m = new Map<string, Record<string, string>>();
    for (const pod of this.deps.store.list("pods")) {
      const labels = pod.metadata.labels ?? {};
      m.set(`${pod.metadata.namespace ?? "default"}/${pod.metadata.name}`, labels);
      const ips = [pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((p) => p.ip)];
      for (const ip of ips) if (ip && !pod.spec?.hostNetwork) m.set(ip, labels);
    }
    this.#podLabels = m;
  }
}
