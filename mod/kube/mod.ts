/**
 * Cluster state: typed Kubernetes objects, the in-memory store with typed change events, and
 * the service catalog (Services joined with EndpointSlices or Endpoints) that DNS, proxy and
 * gateway read. Sources (metaserver, kubeconfig, manifests) feed the store.
 * @module
 */
export * from "./types.ts";
export * from "./store.ts";
export * from "./catalog.ts";
