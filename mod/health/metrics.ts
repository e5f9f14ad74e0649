/** Metrics of the health module (probes, messages, votes, decisions, annotation writes). */

import type { Registry } from "../metrics/mod.ts";

export function healthMetrics(r: Registry) {
  return {
    probes: r.counter(
      "edgemesh_health_probes_total",
      "Probes of group members by result (ok, fail) and path (direct, tunnel: the last one tried)",
      ["result", "path"],
    ),
    probeSeconds: r.histogram(
      "edgemesh_health_probe_seconds",
      "Duration of one probe including retries",
    ),
    roundSeconds: r.histogram(
      "edgemesh_health_round_seconds",
      "Duration of one probe, sign and exchange round",
    ),
    digests: r.counter(
      "edgemesh_health_digests_total",
      "Signed verdict digests received, by result (accepted or the reject reason)",
      ["result"],
    ),
    exchanges: r.counter(
      "edgemesh_health_exchanges_total",
      "Gossip exchange attempts we started, by result and path (direct, tunnel)",
      ["result", "path"],
    ),
    bytes: r.counter("edgemesh_health_bytes_total", "Gossip bytes by direction (sent, received)", [
      "direction",
    ]),
    decisions: r.counter("edgemesh_health_decisions_total", "Verdict changes by new verdict", [
      "verdict",
    ]),
    members: r.gauge("edgemesh_health_members", "Group members by standing verdict", ["verdict"]),
    writes: r.counter(
      "edgemesh_health_annotation_writes_total",
      "Node annotation patches by result (ok, error) and reason (change, refresh)",
      ["result", "reason"],
    ),
    writer: r.gauge("edgemesh_health_writer", "1 while this node is its group's annotation writer"),
  };
}

export type HealthMetrics = ReturnType<typeof healthMetrics>;
