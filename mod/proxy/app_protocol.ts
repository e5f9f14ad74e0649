/** Which proxy path a service port takes: opaque TCP, HTTP/1.1 (head parsed on demand), TLS, UDP. */

import type { CatalogPort } from "../kube/mod.ts";

export type PortKind = "tcp" | "http" | "tls" | "udp";

const HTTP = new Set(["http", "ws", "kubernetes.io/ws"]);
const TLS = new Set(["https", "tls", "kubernetes.io/wss"]);

/**
 * `appProtocol` wins; otherwise the port name rule `<protocol>[-<suffix>]` (Istio/EdgeMesh):
 * http, ws → http; https, tls → tls; http2, grpc, tcp and the rest → opaque tcp. UDP ports
 * are always udp.
 */
export function portKind(p: Pick<CatalogPort, "protocol" | "name" | "appProtocol">): PortKind {
  if (p.protocol === "UDP") return "udp";
  const ap = p.appProtocol?.toLowerCase();
  const proto = ap ?? p.name.toLowerCase().split("-")[0];
  if (HTTP.has(proto)) return "http";
  if (TLS.has(proto)) return "tls";
  return "tcp";
}
