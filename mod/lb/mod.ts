/**
 * Load balancing, shared by the service proxy and the gateway: one `Balancer` interface with
 * ROUND_ROBIN (default), RANDOM, LEAST_REQUEST and consistent hashing with bounded load
 * (keyed by header, cookie, source IP or query parameter), Service ClientIP session
 * affinity, and DestinationRule parsing with port-level overrides.
 * @module
 */
export * from "./balancer.ts";
export * from "./simple.ts";
export * from "./consistent_hash.ts";
export * from "./affinity.ts";
export * from "./policy.ts";
export * from "./errors.ts";
export { hash32 } from "./hash.ts";
