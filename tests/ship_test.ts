/** Shipping: the systemd unit verifies; the installer works in a scratch root (DESTDIR). */
import { equal, match, ok } from "node:assert/strict";
import { PROJECT_ROOT } from "./support/agent.ts";

async function sh(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, {
    args,
    env,
    cwd: PROJECT_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** A stand-in binary: the real bundle run by deno (denort cannot be downloaded here). */
async function bundleBinary(dir: string): Promise<string> {
  const b = await sh(Deno.execPath(), [
    "bundle",
    "--platform",
    "deno",
    "-o",
    `${dir}/edgemesh.js`,
    "main.ts",
  ]);
  equal(b.code, 0, b.out);
  const bin = `${dir}/edgemesh`;
  await Deno.writeTextFile(
    bin,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A --unstable-net "${dir}/edgemesh.js" "$@"\n`,
  );
  await Deno.chmod(bin, 0o755);
  return bin;
}

Deno.test("systemd-analyze verify accepts edgemesh.service (Type=notify, hardening, cleanup on stop)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const unit = await Deno.readTextFile(`${PROJECT_ROOT}systemd/edgemesh.service`);
    for (
      const line of [
        "Type=notify",
        "Restart=always",
        "StateDirectory=edgemesh",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
      ]
    ) {
      ok(unit.includes(`\n${line}\n`), line);
    }
    match(
      unit,
      /\nExecStart=\/usr\/local\/bin\/edgemesh agent --config \/etc\/edgemesh\/edgemesh\.yaml\n/,
    );
    match(unit, /\nExecStopPost=\/usr\/local\/bin\/edgemesh cleanup /);
    match(unit, /\nCapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_NET_RAW\n/);
    // verify needs the executable to exist: point it at a stub in the temp dir.
    await Deno.writeTextFile(`${dir}/edgemesh`, "#!/bin/sh\nexit 0\n");
    await Deno.chmod(`${dir}/edgemesh`, 0o755);
    await Deno.writeTextFile(
      `${dir}/edgemesh.service`,
      unit.replaceAll("/usr/local/bin/edgemesh", `${dir}/edgemesh`),
    );
    const r = await sh("systemd-analyze", ["verify", `${dir}/edgemesh.service`]);
    equal(r.code, 0, r.out);
    equal(r.out.trim(), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install.sh installs binary, unit, config and PSK into DESTDIR, idempotently, and uninstalls", async () => {
  const dir = await Deno.makeTempDir({ prefix: "edgemesh-install-" });
  try {
    const bin = await bundleBinary(dir);
    const root = `${dir}/root`;
    const first = await sh("bash", [
      `${PROJECT_ROOT}scripts/install.sh`,
      "--binary",
      bin,
      "--no-start",
    ], { DESTDIR: root });
    equal(first.code, 0, first.out);
    match(first.out, /generated a new PSK/);
    match(first.out, /systemd not touched/);
    ok((await Deno.stat(`${root}/usr/local/bin/edgemesh`)).mode! & 0o100);
    equal((await Deno.stat(`${root}/etc/edgemesh/psk`)).mode! & 0o777, 0o600);
    ok((await Deno.readTextFile(`${root}/etc/edgemesh/psk`)).trim().length >= 40);
    equal((await Deno.stat(`${root}/var/lib/edgemesh`)).mode! & 0o777, 0o700);
    const unit = await Deno.readTextFile(`${root}/etc/systemd/system/edgemesh.service`);
    match(unit, /Type=notify/);
    const check = await sh(bin, ["config", "check", `${root}/etc/edgemesh/edgemesh.yaml`]);
    equal(check.code, 0, check.out);
    // Second run keeps config and PSK.
    await Deno.writeTextFile(`${root}/etc/edgemesh/edgemesh.yaml`, "nodeName: edge-1\n");
    const psk = await Deno.readTextFile(`${root}/etc/edgemesh/psk`);
    const second = await sh("bash", [
      `${PROJECT_ROOT}scripts/install.sh`,
      "--binary",
      bin,
      "--destdir",
      root,
    ]);
    equal(second.code, 0, second.out);
    match(second.out, /kept the existing .*edgemesh\.yaml/);
    equal(await Deno.readTextFile(`${root}/etc/edgemesh/edgemesh.yaml`), "nodeName: edge-1\n");
    equal(await Deno.readTextFile(`${root}/etc/edgemesh/psk`), psk);
    // Uninstall keeps the state.
    await Deno.writeTextFile(`${root}/var/lib/edgemesh/identity.key`, "x");
    const un = await sh("bash", [`${PROJECT_ROOT}scripts/install.sh`, "--uninstall"], {
      DESTDIR: root,
    });
    equal(un.code, 0, un.out);
    for (
      const gone of [
        "usr/local/bin/edgemesh",
        "etc/systemd/system/edgemesh.service",
        "etc/edgemesh",
      ]
    ) {
      equal(await Deno.stat(`${root}/${gone}`).then(() => true, () => false), false, gone);
    }
    ok(await Deno.stat(`${root}/var/lib/edgemesh/identity.key`));
    const bad = await sh("bash", [`${PROJECT_ROOT}scripts/install.sh`, "--bogus"], {
      DESTDIR: root,
    });
    equal(bad.code, 1);
    match(bad.out, /unknown argument "--bogus"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
