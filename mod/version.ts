/** Build identity. The version is stamped from deno.json at bundle time via the JSON import. */
import meta from "../deno.json" with { type: "json" };

export const VERSION: string = meta.version;

export function versionInfo(): {
  version: string;
  deno: string;
  v8: string;
  typescript: string;
  target: string;
} {
  return {
    version: VERSION,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    target: Deno.build.target,
  };
}
