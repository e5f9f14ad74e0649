/** The validated routing model the gateway builds from VirtualServices and Gateways. */

/** An Istio StringMatch, compiled. */
export type StringMatch =
  | { kind: "exact"; value: string }
  | { kind: "prefix"; value: string }
  | { kind: "regex"; value: RegExp };

export interface HttpMatch {
  uri?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  /** Lower-cased header name → match. */
  headers: [string, StringMatch][];
  queryParams: [string, StringMatch][];
  /** Gateway port this match is limited to. */
  port?: number;
  /** `ns/name` of gateways this match is limited to. */
  gateways?: string[];
}

export interface Destination {
  /** Namespace and name of the Service the `host` names. */
  namespace: string;
  service: string;
  /** Service port number; undefined means the service's only port. */
  port?: number;
  subset?: string;
}

export interface WeightedDestination {
  destination: Destination;
  weight: number;
  headers?: HeaderOps;
}

export interface HeaderOps {
  set: [string, string][];
  add: [string, string][];
  remove: string[];
}

export interface HttpRoute {
  /** Name for metrics and logs: the route's `name`, else `ns/vs#index`. */
  name: string;
  /** Empty means match everything. Any match in the list may match. */
  match: HttpMatch[];
  route: WeightedDestination[];
  rewriteUri?: string;
  timeoutMs?: number;
  retries?: { attempts: number; perTryTimeoutMs?: number };
  requestHeaders?: HeaderOps;
  responseHeaders?: HeaderOps;
  /** A route with a fixed answer instead of a destination (`directResponse`). */
  directStatus?: number;
}

export interface L4Match {
  port?: number;
  gateways?: string[];
  /** tls[] routes only: SNI patterns. */
  sniHosts?: string[];
}

export interface L4Route {
  name: string;
  match: L4Match[];
  route: WeightedDestination[];
}

export interface VirtualServiceModel {
  /** `ns/name` */
  key: string;
  namespace: string;
  hosts: string[];
  /** `ns/name` of the gateways it binds to (the mesh gateway removed). */
  gateways: string[];
  http: HttpRoute[];
  tcp: L4Route[];
  tls: L4Route[];
}

/** How a listener treats bytes. */
export type ServerKind = "http" | "https" | "tcp" | "tls-terminate" | "tls-passthrough";

export interface TlsSettings {
  mode: "SIMPLE" | "MUTUAL";
  /** `ns/name` of the Secret. */
  credential: string;
  minProtocolVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
}

/** One `servers[]` entry of a selected Gateway. */
export interface ServerModel {
  /** `ns/name` of the Gateway. */
  gateway: string;
  port: number;
  portName: string;
  kind: ServerKind;
  /** Host patterns (the `ns/` prefix removed). */
  hosts: string[];
  tls?: TlsSettings;
  /** HTTP only: answer every request with a 301 to https. */
  httpsRedirect?: boolean;
}
