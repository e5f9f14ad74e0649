/** `deno task bundle`: bundles main.ts and every dependency into dist/edgemesh.js. */

const out = "dist/edgemesh.js";
await Deno.mkdir("dist", { recursive: true });
const { code } = await new Deno.Command(Deno.execPath(), {
  args: ["bundle", "--platform", "deno", "-o", out, "main.ts"],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (code !== 0) {
  console.error(`deno bundle failed (exit ${code})`);
  Deno.exit(code);
}
const { size } = await Deno.stat(out);
console.log(`${out}: ${(size / 1024).toFixed(0)} KiB`);
