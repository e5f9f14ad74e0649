/**
 * Command-line helpers: a strict flag parser with help text. Commands themselves are
 * wired in main.ts.
 * @module
 */
export * from "./args.ts";
