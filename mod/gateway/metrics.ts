/** The gateway's metrics, registered once per registry. */

import type { Registry } from "../metrics/mod.ts";

export function gatewayMetrics(r: Registry) {
  return {
    requests: r.counter(
      "edgemesh_gateway_http_requests_total",
      "HTTP requests handled by the gateway, by route and status code.",
      ["route", "code"],
    ),
    duration: r.histogram(
      "edgemesh_gateway_http_request_duration_seconds",
      "Time from the request head to the end of the response, by route.",
      ["route"],
    ),
    retries: r.counter(
      "edgemesh_gateway_http_retries_total",
      "Upstream attempts retried, by route.",
      ["route"],
    ),
    connections: r.counter(
      "edgemesh_gateway_connections_total",
      "Connections accepted by the gateway, by listener port and kind.",
      ["port", "kind"],
    ),
    l4: r.counter(
      "edgemesh_gateway_tcp_connections_total",
      "TCP/TLS connections routed, by route and result (ok, no_route, no_endpoint, error).",
      ["route", "result"],
    ),
    bytes: r.counter(
      "edgemesh_gateway_bytes_total",
      "Bytes proxied by the gateway, by route and direction (rx from clients, tx to clients).",
      ["route", "direction"],
    ),
    upstreams: r.counter(
      "edgemesh_gateway_upstream_connects_total",
      "Upstream connection attempts, by path (local, lan, tunnel-direct, tunnel-relay) and result.",
      ["path", "result"],
    ),
    tlsErrors: r.counter(
      "edgemesh_gateway_tls_errors_total",
      "TLS handshakes refused, by listener port and reason.",
      ["port", "reason"],
    ),
  };
}

export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;
