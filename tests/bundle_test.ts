/** The bundle needs nothing beside itself: no node_modules, no network, no config. */
import { equal, match } from "node:assert/strict";
import { PROJECT_ROOT, runCli } from "./support/agent.ts";

Deno.test("deno task bundle makes dist/edgemesh.js that runs alone from an empty folder", async () => {
  const b = await new Deno.Command(Deno.execPath(), {
    args: ["task", "bundle"],
    cwd: PROJECT_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(b.code, 0, new TextDecoder().decode(b.stderr));
  const dir = await Deno.makeTempDir({ prefix: "edgemesh-bundle-" });
  try {
    await Deno.copyFile(`${PROJECT_ROOT}dist/edgemesh.js`, `${dir}/edgemesh.js`);
    const opts = {
      script: "edgemesh.js",
      cwd: dir,
      permissions: ["-A", "--no-remote", "--cached-only", "--no-config"],
    };
    const v = await runCli(["version"], opts);
    equal(v.code, 0, v.stderr);
    match(v.stdout, /^edgemesh \d+\.\d+\.\d+ /);
    const d = await runCli(["config", "defaults"], opts);
    equal(d.code, 0, d.stderr);
    match(d.stdout, /listenPort: 20006/);
    const entries = [...Deno.readDirSync(dir)].map((e) => e.name);
    equal(entries.join(","), "edgemesh.js", "nothing was fetched or created beside the bundle");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
