import { equal, match, ok } from "node:assert/strict";
import { runCli } from "./support/agent.ts";
import { parse } from "yaml";

Deno.test("edgemesh --help lists the commands; every command has --help", async () => {
  const top = await runCli(["--help"]);
  equal(top.code, 0);
  for (const c of ["agent", "config", "status", "version"]) {
    match(top.stdout, new RegExp(`\\n  ${c} `));
  }
  for (
    const args of [["agent", "--help"], ["config", "--help"], ["config", "check", "--help"], [
      "status",
      "-h",
    ], ["version", "--help"]]
  ) {
    const r = await runCli(args);
    equal(r.code, 0, args.join(" "));
    match(r.stdout, /Usage: edgemesh /, args.join(" "));
  }
});

Deno.test("an unknown command or flag prints one error line plus usage and exits 2", async () => {
  const a = await runCli(["frobnicate"]);
  equal(a.code, 2);
  match(a.stderr, /^edgemesh: unknown command "frobnicate"\nUsage: /);
  const b = await runCli(["agent", "--bogus"]);
  equal(b.code, 2);
  match(b.stderr, /^edgemesh: unknown flag "--bogus"\nUsage: edgemesh agent/);
  const c = await runCli(["config", "nope"]);
  equal(c.code, 2);
  const d = await runCli(["agent", "--log-level", "loud"]);
  equal(d.code, 2);
  match(d.stderr, /--log-level must be/);
});

Deno.test("edgemesh version prints version, Deno version and target", async () => {
  const r = await runCli(["version"]);
  equal(r.code, 0);
  match(r.stdout, /^edgemesh \d+\.\d+\.\d+ \(deno 2\.\d+\.\d+, v8 .*, (x86_64|aarch64)-/);
  const j = JSON.parse((await runCli(["version", "--json"])).stdout);
  equal(j.target, Deno.build.target);
});

Deno.test("config defaults prints YAML that config check accepts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const d = await runCli(["config", "defaults"]);
    equal(d.code, 0);
    const doc = parse(d.stdout);
    equal(doc.modules.edgeTunnel.listenPort, 20006);
    await Deno.writeTextFile(`${dir}/d.yaml`, d.stdout);
    const c = await runCli(["config", "check", `${dir}/d.yaml`]);
    equal(c.code, 0, c.stderr);
    equal(c.stdout, "ok\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config check on a broken file lists every error with file:line:col and exits 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = `${dir}/broken.yaml`;
    await Deno.writeTextFile(
      f,
      "nodeName: Bad_Name\nmodules:\n  edgeTunnel:\n    listenPort: -1\n    psk: {enabled: true}\n",
    );
    const r = await runCli(["config", "check", f]);
    equal(r.code, 2);
    const lines = r.stderr.trim().split("\n");
    equal(lines.length, 3, r.stderr);
    ok(lines.every((l) => l.startsWith(`${f}:`)), r.stderr);
    match(lines[0], /:1:1: nodeName: must be a Kubernetes node name/);
    match(lines[1], /:4:5: modules\.edgeTunnel\.listenPort: must be at least 0/);
    match(
      lines[2],
      /:5:11: modules\.edgeTunnel\.psk\.enabled: unknown key; did you mean "enable"\?/,
    );
    const missing = await runCli(["config", "check", `${dir}/absent.yaml`]);
    equal(missing.code, 2);
    match(missing.stderr, /absent\.yaml: cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the example configs pass config check", async () => {
  for await (const e of Deno.readDir(new URL("../examples", import.meta.url))) {
    if (!e.isFile || !e.name.endsWith(".yaml") || e.name.startsWith("admission")) continue;
    const r = await runCli(["config", "check", `examples/${e.name}`]);
    equal(r.code, 0, `${e.name}: ${r.stderr}`);
  }
});
