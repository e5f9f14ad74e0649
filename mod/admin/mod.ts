/**
 * Admin API: `/healthz`, `/readyz` (503 lists the modules not serving), `/metrics`
 * (Prometheus text), `/api/v1/status` (JSON assembled by the composition root), plus routes
 * modules add (e.g. `/api/v1/ping`).
 * @module
 */
export * from "./server.ts";
export * from "./errors.ts";
export * from "./render.ts";
