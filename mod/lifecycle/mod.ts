/**
 * Lifecycle: the `Service` contract (`start(signal)`, idempotent `stop()`, `status()`) and a
 * group that starts services in dependency order and stops them in reverse.
 * @module
 */
export * from "./service.ts";
