/**
 * The Kubernetes objects edgemesh reads, typed only as far as we use them. Objects come from
 * the metaserver, a kube-apiserver or manifest files; anything may be missing, so readers
 * must treat every optional field as absent-able.
 */

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion?: string; kind?: string; name: string; uid?: string }[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface ServicePort {
  name?: string;
  protocol?: "TCP" | "UDP" | "SCTP";
  port: number;
  targetPort?: number | string;
  nodePort?: number;
  appProtocol?: string;
}

export interface Service extends KubeObject {
  spec?: {
    type?: "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";
    clusterIP?: string;
    clusterIPs?: string[];
    ipFamilies?: ("IPv4" | "IPv6")[];
    ports?: ServicePort[];
    selector?: Record<string, string>;
    externalName?: string;
    externalIPs?: string[];
    sessionAffinity?: "None" | "ClientIP";
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    internalTrafficPolicy?: "Cluster" | "Local";
    externalTrafficPolicy?: "Cluster" | "Local";
    publishNotReadyAddresses?: boolean;
  };
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol?: "TCP" | "UDP" | "SCTP";
  appProtocol?: string;
}

export interface ObjectReference {
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
}

/** core/v1 Endpoints */
export interface Endpoints extends KubeObject {
  subsets?: {
    addresses?: { ip: string; hostname?: string; nodeName?: string; targetRef?: ObjectReference }[];
    notReadyAddresses?: {
      ip: string;
      hostname?: string;
      nodeName?: string;
      targetRef?: ObjectReference;
    }[];
    ports?: EndpointPort[];
  }[];
}

/** discovery.k8s.io/v1 EndpointSlice */
export interface EndpointSlice extends KubeObject {
  addressType?: "IPv4" | "IPv6" | "FQDN";
  endpoints?: {
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    hostname?: string;
    nodeName?: string;
    zone?: string;
    targetRef?: ObjectReference;
  }[];
  ports?: EndpointPort[];
}

export interface NodeCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface Node extends KubeObject {
  spec?: {
    podCIDR?: string;
    podCIDRs?: string[];
    unschedulable?: boolean;
    taints?: { key: string; value?: string; effect: string; timeAdded?: string }[];
  };
  status?: {
    addresses?: { type: string; address: string }[];
    conditions?: NodeCondition[];
  };
}

export interface Pod extends KubeObject {
  spec?: { nodeName?: string; hostname?: string; subdomain?: string; hostNetwork?: boolean };
  status?: { podIP?: string; podIPs?: { ip: string }[]; hostIP?: string; phase?: string };
}

export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export interface Secret extends KubeObject {
  type?: string;
  /** base64-encoded values, as the API returns them */
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** networking.istio.io DestinationRule (the parts we honour). */
export interface DestinationRule extends KubeObject {
  spec?: {
    host?: string;
    trafficPolicy?: TrafficPolicy;
    subsets?: { name: string; labels?: Record<string, string>; trafficPolicy?: TrafficPolicy }[];
  };
}

export interface LoadBalancerSettings {
  simple?:
    | "ROUND_ROBIN"
    | "RANDOM"
    | "LEAST_REQUEST"
    | "LEAST_CONN"
    | "PASSTHROUGH"
    | "UNSPECIFIED";
  consistentHash?: {
    httpHeaderName?: string;
    httpCookie?: { name: string; path?: string; ttl?: string };
    useSourceIp?: boolean;
    httpQueryParameterName?: string;
    minimumRingSize?: number;
  };
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  portLevelSettings?: { port?: { number?: number }; loadBalancer?: LoadBalancerSettings }[];
}

export interface Gateway extends KubeObject {
  spec?: {
    selector?: Record<string, string>;
    servers?: {
      port?: { number?: number; protocol?: string; name?: string };
      hosts?: string[];
      tls?: {
        mode?: "SIMPLE" | "MUTUAL" | "PASSTHROUGH" | "ISTIO_MUTUAL" | "AUTO_PASSTHROUGH";
        credentialName?: string;
        minProtocolVersion?: string;
        httpsRedirect?: boolean;
      };
    }[];
  };
}

/** networking.istio.io VirtualService; route shapes are validated by the gateway module. */
export interface VirtualService extends KubeObject {
  spec?: {
    hosts?: string[];
    gateways?: string[];
    http?: unknown[];
    tcp?: unknown[];
    tls?: unknown[];
  };
}

/** Every kind the store holds, by its plural resource name. */
export interface KindMap {
  services: Service;
  endpoints: Endpoints;
  endpointslices: EndpointSlice;
  nodes: Node;
  pods: Pod;
  configmaps: ConfigMap;
  secrets: Secret;
  destinationrules: DestinationRule;
  gateways: Gateway;
  virtualservices: VirtualService;
}

export type Kind = keyof KindMap;

export const KINDS: readonly Kind[] = [
  "services",
  "endpoints",
  "endpointslices",
  "nodes",
  "pods",
  "configmaps",
  "secrets",
  "destinationrules",
  "gateways",
  "virtualservices",
];

/** Kinds that are cluster-scoped (no namespace). */
export const CLUSTER_SCOPED: ReadonlySet<Kind> = new Set<Kind>(["nodes"]);

/** `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata.namespace;
  return ns ? `${ns}/${obj.metadata.name}` : obj.metadata.name;
}
