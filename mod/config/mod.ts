/**
 * Configuration: the schema (EdgeMesh's `edgemesh-agent.yaml` names plus ours), layered
 * loading with every error reported as `file:line:col: field.path: problem`, the embedded
 * defaults, and a file watcher for hot reload. Imports no other module.
 * @module
 */
export * from "./errors.ts";
export * from "./duration.ts";
export * from "./address.ts";
export {
  type Config,
  type DnsConfig,
  type GatewayConfig,
  type HealthConfig,
  type ProxyConfig,
  schema,
  type TunnelConfig,
} from "./schema.ts";
export * from "./load.ts";
export * from "./watch.ts";
