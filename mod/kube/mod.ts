/**
 * Cluster state: typed Kubernetes objects, the in-memory store with typed change events, and
 * the service catalog (Services joined with EndpointSlices or Endpoints) that DNS, proxy and
 * gateway read. Sources (metaserver, kubeconfig, manifests) feed the store; `ClusterState`
 * is the service that loads the on-disk snapshot, runs the source and saves the store back.
 * @module
 */
export * from "./types.ts";
export * from "./store.ts";
export * from "./catalog.ts";
export * from "./errors.ts";
export {
  type ClusterSourceKind,
  ClusterState,
  type ClusterStateDeps,
  type ClusterStateDetails,
  type ClusterStateOptions,
} from "./cluster_state.ts";
export {
  type AgentConfigMapEvents,
  AgentConfigMaps,
  type AgentConfigMapsOptions,
  type HealthConfig,
} from "./agent_configmaps.ts";
export type { ClusterSource, SourceStatus } from "./source.ts";
export type { KubeTransport, ListResult, WatchEvent } from "./transport.ts";
export { FetchTransport } from "./transport_fetch.ts";
export { ClientNodeTransport } from "./transport_client_node.ts";
export { ApiSource } from "./api_source.ts";
export { SNAPSHOT_FILE } from "./snapshot.ts";
export { NodeAnnotationWriter, type NodeWriterOptions } from "./node_writer.ts";
export { nodeCloudNotReady } from "./node_state.ts";
