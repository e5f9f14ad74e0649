/**
 * Logging: one small structured logger writing JSON lines (`ts, level, component, msg, …`)
 * for journald. Loggers are injected; `child()` names a component.
 * @module
 */
export * from "./logger.ts";
