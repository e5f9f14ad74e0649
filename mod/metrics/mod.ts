/**
 * Metrics: a Prometheus registry (counters, gauges, histograms) rendered in the text format
 * by the admin API. One registry per agent, injected into every module.
 * @module
 */
export * from "./registry.ts";
