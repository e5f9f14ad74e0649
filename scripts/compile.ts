/**
 * `deno task compile`: one executable per target from the bundle, with the narrowed
 * permission set. `deno compile` needs the `denort` runtime of each target: it downloads it
 * from the Deno project's servers, or uses the file named by `DENORT_BIN` (host target) or
 * `DENORT_BIN_<TARGET>` (e.g. `DENORT_BIN_AARCH64_UNKNOWN_LINUX_GNU`). When neither works,
 * this fails with a clear message; it never produces a fake binary.
 */

import { agentFlags } from "./permissions.ts";

const TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"];
const wanted = Deno.args.length > 0 ? Deno.args : TARGETS;
const bundle = "dist/edgemesh.js";

const b = await new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", "scripts/bundle.ts"],
  stdout: "inherit",
  stderr: "inherit",
})
  .output();
if (b.code !== 0) Deno.exit(b.code);

let failed = 0;
for (const target of wanted) {
  if (!TARGETS.includes(target)) {
    console.error(`unknown target "${target}"; known: ${TARGETS.join(", ")}`);
    Deno.exit(2);
  }
  const envName = `DENORT_BIN_${target.toUpperCase().replaceAll("-", "_")}`;
  const denort = Deno.env.get(envName) ??
    (target === Deno.build.target ? Deno.env.get("DENORT_BIN") : undefined);
  const out = `dist/edgemesh-${target}`;
  const env: Record<string, string> = {};
  if (denort) env.DENORT_BIN = denort;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["compile", ...agentFlags(), "--no-check", "--target", target, "-o", out, bundle],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code === 0) {
    const { size } = await Deno.stat(out);
    console.log(`${out}: ${(size / 1048576).toFixed(1)} MiB`);
    continue;
  }
  failed++;
  const err = new TextDecoder().decode(r.stderr);
  const network = /dns error|lookup|connect|download|network/i.test(err);
  console.error(
    `cannot compile for ${target}: ` +
      (network
        ? `deno compile needs the denort runtime for ${target}, and downloading it failed (no access to the Deno download servers).\n` +
          `  Give a local copy instead: ${envName}=/path/to/denort (or DENORT_BIN for the host target ${Deno.build.target}),\n` +
          `  taken from the denort-${target}.zip of Deno ${Deno.version.deno}.`
        : err.trim().split("\n").slice(0, 5).join("\n  ")),
  );
}
Deno.exit(failed > 0 ? 1 : 0);
