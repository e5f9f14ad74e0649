/**
 * Cluster config sync: ConfigMap `kubeedge/edgemesh-agent-cfg` → `<stateDir>/edgemesh-agent.yaml`,
 * only when it validates; the config watcher hot-reloads it.
 * @module
 */
export * from "./sync.ts";
