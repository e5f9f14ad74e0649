/**
 * systemd integration: `Type=notify` readiness, stopping and watchdog messages.
 * @module
 */
export * from "./notify.ts";
