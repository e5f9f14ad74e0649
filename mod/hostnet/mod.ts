/**
 * Host networking: the bridge device that holds the bridge IP, local address discovery with
 * EdgeMesh's interface filter, and an injectable runner for `ip`/`iptables` (so tests run
 * them inside network namespaces).
 * @module
 */
export * from "./bridge.ts";
export * from "./errors.ts";
export * from "./interfaces.ts";
export * from "./run.ts";
