/** The proxy's metrics, per service port (`service="ns/name"`, `port="80/tcp"`). */

import type { Counter, Gauge, Registry } from "../metrics/mod.ts";

export class ProxyMetrics {
  readonly active: Gauge;
  readonly total: Counter;
  readonly bytes: Counter;
  readonly connectErrors: Counter;
  readonly picks: Counter;
  readonly udpDropped: Counter;

  constructor(r: Registry) {
    this.active = r.gauge(
      "edgemesh_proxy_active_connections",
      "Open proxied connections (TCP) or flows (UDP).",
      ["service", "port"],
    );
    this.total = r.counter(
      "edgemesh_proxy_connections_total",
      "Proxied connections (TCP) or flows (UDP) accepted.",
      ["service", "port"],
    );
    this.bytes = r.counter(
      "edgemesh_proxy_bytes_total",
      "Bytes relayed; direction tx = client to endpoint, rx = endpoint to client.",
      ["service", "port", "direction"],
    );
    this.connectErrors = r.counter(
      "edgemesh_proxy_connect_errors_total",
      "Failed attempts to reach an endpoint, by reason.",
      ["service", "port", "reason"],
    );
    this.picks = r.counter(
      "edgemesh_proxy_endpoint_picks_total",
      "Endpoints chosen by the balancer, by endpoint and path.",
      ["service", "port", "endpoint", "path"],
    );
    this.udpDropped = r.counter(
      "edgemesh_proxy_udp_dropped_total",
      "UDP datagrams dropped, by reason.",
      ["service", "port", "reason"],
    );
  }
}
