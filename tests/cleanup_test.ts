/**
 * `edgemesh cleanup` removes interception chains and the bridge device left by a crashed
 * agent. Runs in a namespace made for the test:
 *   [ns em-clean-<pid>]  bridge emc<pid> 198.18.251.1/32, nat chains EDGEMESH-*
 */
import { equal, match, ok } from "node:assert/strict";
import { stringify } from "yaml";
import { execRunner } from "../mod/hostnet/mod.ts";
import { PROJECT_ROOT } from "./support/agent.ts";

Deno.test("edgemesh cleanup removes leftover EDGEMESH chains and the bridge device, and is idempotent", async () => {
  const ns = `em-clean-${Deno.pid}-${Math.floor(Math.random() * 1e5)}`;
  const dir = await Deno.makeTempDir();
  const device = `emc${Deno.pid % 100000}`;
  equal((await execRunner("ip", ["netns", "add", ns])).code, 0, "ip netns add (needs root)");
  const inNs = (cmd: string, args: string[], stdin?: string) =>
    execRunner("ip", ["netns", "exec", ns, cmd, ...args], stdin);
  try {
    equal((await inNs("ip", ["link", "add", device, "type", "bridge"])).code, 0);
    const rules = [
      "*nat",
      ":EDGEMESH-SERVICES - [0:0]",
      "-A OUTPUT -j EDGEMESH-SERVICES",
      "-A EDGEMESH-SERVICES -d 198.19.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 198.18.251.1:40000",
      "COMMIT",
      "",
    ].join("\n");
    const restore = await inNs("iptables-restore", ["--noflush"], rules);
    equal(restore.code, 0, restore.stderr);
    const config = `${dir}/edgemesh.yaml`;
    await Deno.writeTextFile(config, stringify({ commonConfig: { bridgeDeviceName: device } }));
    const run = () =>
      inNs(Deno.execPath(), ["run", "-A", `${PROJECT_ROOT}main.ts`, "cleanup", "--config", config]);
    const first = await run();
    equal(first.code, 0, first.stderr);
    match(first.stdout, /iptables: removed [1-9]\d* edgemesh rule/);
    match(first.stdout, new RegExp(`bridge ${device}: removed`));
    const save = await inNs("iptables-save", ["-t", "nat"]);
    ok(!save.stdout.includes("EDGEMESH"), save.stdout);
    equal((await inNs("ip", ["link", "show", device])).code !== 0, true);
    const second = await run();
    equal(second.code, 0, second.stderr);
    match(second.stdout, /removed 0 edgemesh/);
    match(second.stdout, /not present/);
  } finally {
    await execRunner("ip", ["netns", "del", ns]);
    await Deno.remove(dir, { recursive: true });
  }
});
