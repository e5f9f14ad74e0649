/** The DNS module's metrics, registered once per registry (names are stable across restarts). */

import type { Counter, Gauge, Histogram, Registry } from "../metrics/mod.ts";

export interface DnsMetrics {
  queries: Counter;
  cacheHits: Counter;
  cacheMisses: Counter;
  cacheEntries: Gauge;
  upstreamErrors: Counter;
  dropped: Counter;
  latency: Histogram;
  tcpConnections: Gauge;
}

export function dnsMetrics(registry: Registry): DnsMetrics {
  return {
    queries: registry.counter(
      "edgemesh_dns_queries_total",
      "DNS queries answered, by query type, response code, source (cluster, cache, upstream, error) and protocol.",
      ["qtype", "rcode", "source", "protocol"],
    ),
    cacheHits: registry.counter(
      "edgemesh_dns_cache_hits_total",
      "Forwarded queries answered from the cache.",
    ),
    cacheMisses: registry.counter(
      "edgemesh_dns_cache_misses_total",
      "Forwarded queries not in the cache.",
    ),
    cacheEntries: registry.gauge("edgemesh_dns_cache_entries", "Entries in the forwarder cache."),
    upstreamErrors: registry.counter(
      "edgemesh_dns_upstream_errors_total",
      "Failed exchanges with an upstream server, by upstream and reason.",
      ["upstream", "reason"],
    ),
    dropped: registry.counter(
      "edgemesh_dns_dropped_total",
      "Packets or connections dropped without an answer, by reason.",
      ["reason"],
    ),
    latency: registry.histogram(
      "edgemesh_dns_request_duration_seconds",
      "Time from receiving a query to handing its answer to the socket, by source.",
      ["source"],
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5],
    ),
    tcpConnections: registry.gauge("edgemesh_dns_tcp_connections", "Open TCP client connections."),
  };
}

/** The key under which queries are counted locally before a flush: qtype|rcode|source|protocol. */
export function countKey(qtype: string, rcode: string, source: string, protocol: string): string {
  return `${qtype}|${rcode}|${source}|${protocol}`;
}
