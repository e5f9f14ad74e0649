/**
 * Interfaces shared between modules, so that no module imports another's classes:
 * the Dialer (tunnel → proxy, gateway, SOCKS5) and the HealthView (health → proxy, DNS,
 * gateway). Pure types and tiny helpers; imports nothing.
 * @module
 */
export * from "./dialer.ts";
export * from "./health_view.ts";
