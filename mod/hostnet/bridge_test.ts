/**
 * Runs inside a namespace made for the test:
 *   [ns edgemesh-br-<pid>]  bridge em<pid> holding 198.18.250.1/32
 */
import { equal, match, ok, rejects } from "node:assert/strict";
import { nullLogger } from "../log/mod.ts";
import {
  BridgeDevice,
  BridgeError,
  execRunner,
  localAddresses,
  netnsRunner,
  removeBridge,
} from "./mod.ts";

async function withNetns(fn: (ns: string) => Promise<void>) {
  const ns = `edgemesh-br-${Deno.pid}-${Math.floor(Math.random() * 1e6)}`;
  const add = await execRunner("ip", ["netns", "add", ns]);
  equal(add.code, 0, `ip netns add needs root: ${add.stderr}`);
  try {
    await fn(ns);
  } finally {
    await execRunner("ip", ["netns", "del", ns]);
  }
}

Deno.test("BridgeDevice creates the bridge with its IP, and removes it on stop", async () => {
  await withNetns(async (ns) => {
    const run = netnsRunner(ns);
    const dev = `em${Deno.pid % 100000}`;
    const bridge = new BridgeDevice({ logger: nullLogger(), run }, {
      device: dev,
      ip: "198.18.250.1",
    });
    await bridge.start(AbortSignal.timeout(5000));
    const show = await run("ip", ["-o", "addr", "show", "dev", dev]);
    match(show.stdout, /inet 198\.18\.250\.1\/32/);
    const link = await run("ip", ["-o", "link", "show", dev]);
    match(link.stdout, /bridge|UP|UNKNOWN/);
    equal(bridge.status().state, "ready");
    await bridge.stop();
    await bridge.stop();
    equal((await run("ip", ["link", "show", dev])).code !== 0, true, "device removed");
  });
});

Deno.test("BridgeDevice keeps a device it did not create, and cleanup removes a leftover one", async () => {
  await withNetns(async (ns) => {
    const run = netnsRunner(ns);
    equal((await run("ip", ["link", "add", "emx", "type", "bridge"])).code, 0);
    const bridge = new BridgeDevice({ logger: nullLogger(), run }, {
      device: "emx",
      ip: "198.18.250.2",
    });
    await bridge.start(AbortSignal.timeout(5000));
    await bridge.stop();
    const after = await run("ip", ["-o", "addr", "show", "dev", "emx"]);
    equal(after.code, 0, "device kept");
    ok(!after.stdout.includes("198.18.250.2"), "our address removed");
    match(await removeBridge("emx", run), /removed/);
    match(await removeBridge("emx", run), /not present/);
  });
});

Deno.test("BridgeDevice explains what to do when it may not create the device", async () => {
  const denied = (cmd: string, args: readonly string[]) =>
    Promise.resolve(
      args[0] === "link" && args[1] === "add"
        ? { code: 2, stdout: "", stderr: "RTNETLINK answers: Operation not permitted" }
        : { code: 1, stdout: "", stderr: `Device "x" does not exist.` + cmd },
    );
  const bridge = new BridgeDevice({ logger: nullLogger(), run: denied }, {
    device: "x",
    ip: "169.254.96.16",
  });
  await rejects(bridge.start(AbortSignal.timeout(1000)), (e: unknown) => {
    ok(e instanceof BridgeError);
    match(
      e.message,
      /Cannot set up bridge device "x" with 169\.254\.96\.16: operation not permitted .*listenAddress/,
    );
    return true;
  });
});

Deno.test("localAddresses() skips filtered interfaces and link-local addresses", () => {
  const fake = () =>
    [
      { name: "lo", family: "IPv4", address: "127.0.0.1" },
      { name: "eth0", family: "IPv4", address: "198.18.1.11" },
      { name: "eth0", family: "IPv6", address: "fe80::1" },
      { name: "docker0", family: "IPv4", address: "198.18.9.1" },
      { name: "edgemesh0", family: "IPv4", address: "169.254.96.16" },
      { name: "wlan0", family: "IPv4", address: "198.18.3.3" },
    ] as Deno.NetworkInterfaceInfo[];
  equal(localAddresses({}, fake).map((a) => a.address).join(","), "198.18.1.11,198.18.3.3");
  equal(
    localAddresses({ extraFilteredInterfaces: ["wlan0"] }, fake).map((a) => a.address).join(","),
    "198.18.1.11",
  );
  equal(
    localAddresses({ listenInterfaces: "wlan0" }, fake).map((a) => a.address).join(","),
    "198.18.3.3",
  );
});
