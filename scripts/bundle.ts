/**
 * `deno task bundle`: bundles main.ts and every dependency into dist/edgemesh.js.
 * The batched DNS worker is a second entry point; its bundled code is embedded in the main
 * bundle as a blob URL, so the one file still runs alone (and `deno compile` of it needs no
 * `--include`).
 */

const out = Deno.args[0] ?? "dist/edgemesh.js";
const WORKER_REF = 'new URL("./batched_worker.ts", import.meta.url)';
const root = new URL("../", import.meta.url).pathname;

async function bundle(entry: string, output: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "deno", "-o", output, entry],
    cwd: root,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    console.error(
      `deno bundle ${entry} failed (exit ${code}):\n${new TextDecoder().decode(stderr)}`,
    );
    Deno.exit(code);
  }
}

const outDir = out.includes("/") ? out.slice(0, out.lastIndexOf("/")) : ".";
await Deno.mkdir(outDir, { recursive: true });
const tmp = await Deno.makeTempDir({ prefix: "edgemesh-bundle-" });
try {
  await bundle("mod/dns/batched_worker.ts", `${tmp}/worker.js`);
  await bundle("main.ts", `${tmp}/main.js`);
  const worker = await Deno.readTextFile(`${tmp}/worker.js`);
  const main = await Deno.readTextFile(`${tmp}/main.js`);
  const hits = main.split(WORKER_REF).length - 1;
  if (hits !== 1) {
    console.error(`expected one reference to the batched DNS worker in the bundle, found ${hits}`);
    Deno.exit(1);
  }
  const embedded = `URL.createObjectURL(new Blob([${
    JSON.stringify(worker)
  }], { type: "text/javascript" }))`;
  await Deno.writeTextFile(out, main.replace(WORKER_REF, embedded));
} finally {
  await Deno.remove(tmp, { recursive: true });
}
const { size } = await Deno.stat(out);
console.log(`${out}: ${(size / 1024).toFixed(0)} KiB`);
