/** The cluster state's metrics, registered once per registry (names stable across restarts). */

import type { Counter, Gauge, Registry } from "../metrics/mod.ts";

export interface ClusterMetrics {
  objects: Gauge;
  lists: Counter;
  watchRestarts: Counter;
  malformed: Counter;
  snapshotWrites: Counter;
  snapshotErrors: Counter;
}

export function clusterMetrics(registry: Registry): ClusterMetrics {
  return {
    objects: registry.gauge("edgemesh_cluster_objects", "Objects in the cluster store, by kind.", [
      "kind",
    ]),
    lists: registry.counter("edgemesh_cluster_lists_total", "List requests sent, by kind.", [
      "kind",
    ]),
    watchRestarts: registry.counter(
      "edgemesh_cluster_watch_restarts_total",
      "Watches re-opened, by kind and reason (closed, expired, error).",
      ["kind", "reason"],
    ),
    malformed: registry.counter(
      "edgemesh_cluster_malformed_objects_total",
      "Objects skipped because a field had the wrong shape, by kind.",
      ["kind"],
    ),
    snapshotWrites: registry.counter(
      "edgemesh_cluster_snapshot_writes_total",
      "Cluster snapshots written.",
    ),
    snapshotErrors: registry.counter(
      "edgemesh_cluster_snapshot_errors_total",
      "Cluster snapshot writes that failed.",
    ),
  };
}
