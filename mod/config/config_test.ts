import { deepStrictEqual, equal, match, ok, throws } from "node:assert/strict";
import {
  checkText,
  ConfigError,
  defaultConfig,
  defaultsYaml,
  diffPaths,
  flagLayer,
  formatDuration,
  formatIssue,
  loadConfig,
  parseDuration,
  parseLayer,
  readConfig,
} from "./mod.ts";

Deno.test("parseDuration() reads Go-style durations and rejects the rest", () => {
  const cases: [string, number | undefined][] = [
    ["30s", 30_000],
    ["1m30s", 90_000],
    ["250ms", 250],
    ["2h", 7_200_000],
    ["1.5s", 1500],
    ["0", 0],
    ["", undefined],
    ["30", undefined],
    ["10 s", undefined],
    ["s", undefined],
    ["-1s", undefined],
  ];
  for (const [text, want] of cases) equal(parseDuration(text), want, text);
  equal(formatDuration(90_000), "1m30s");
  equal(formatDuration(250), "250ms");
});

Deno.test("the printed defaults pass config check and decode to the embedded defaults", () => {
  const r = checkText("defaults.yaml", defaultsYaml());
  deepStrictEqual(r.issues, []);
  deepStrictEqual(r.config, defaultConfig());
  equal(r.config!.modules.edgeTunnel.listenPort, 20006);
  equal(r.config!.modules.edgeTunnel.heartbeatPeriod, 120_000);
  equal(r.config!.commonConfig.bridgeDeviceIP, "169.254.96.16");
  equal(r.config!.commonConfig.adminAddress, "127.0.0.1:10551");
});

Deno.test("an EdgeMesh edgemesh-agent.yaml is accepted unchanged, with warnings for what we ignore", () => {
  const text = `apiVersion: agent.edgemesh.config.kubeedge.io/v1alpha1
kind: EdgeMeshAgent
kubeAPIConfig:
  qps: 100
  burst: 200
  metaServer:
    server: http://127.0.0.1:10550
commonConfig:
  bridgeDeviceName: edgemesh0
  bridgeDeviceIP: 169.254.96.16
modules:
  edgeDNS:
    enable: true
    listenPort: 53
    cacheDNS:
      enable: false
      autoDetect: true
      upstreamServers:
      cacheTTL: 20
  edgeProxy:
    enable: true
    socks5Proxy:
      enable: false
      listenPort: 10800
  edgeTunnel:
    enable: true
    listenPort: 20006
    transport: tcp
    rendezvous: EDGEMESH_PLAYGOUND
    enableIpfsLog: false
    heartbeatPeriod: 120
    relayNodes:
    - nodeName: k8s-master
      advertiseAddress:
      - 1.1.1.1
    psk:
      enable: true
      path: /etc/edgemesh/psk
`;
  const r = checkText("edgemesh-agent.yaml", text);
  ok(r.config, r.issues.map(formatIssue).join("\n"));
  equal(r.issues.filter((i) => i.severity === "error").length, 0);
  deepStrictEqual(r.issues.map((i) => i.path), [
    "apiVersion",
    "kind",
    "modules.edgeTunnel.enableIpfsLog",
  ]);
  equal(r.config.modules.edgeDNS.cacheDNS.cacheTTL, 20_000);
  deepStrictEqual(r.config.modules.edgeTunnel.relayNodes, [{
    nodeName: "k8s-master",
    advertiseAddress: ["1.1.1.1"],
  }]);
});

Deno.test("config check reports every error with file:line:col, field path and a hint", () => {
  const text = `logLevl: debug
modules:
  edgeDNS:
    listenPort: 99999
    ttl: 30
    listenAddress: [127.0.0.1, nope]
  edgeTunnel:
    relayNodes:
      - nodeName: relay-1
        advertiseAddress: [198.18.0.11]
      - nodeName: ""
        advertiseAddres: [x]
  edgeHealth:
    probeInterval: 5
commonConfig:
  adminAddress: "localhost"
`;
  const r = checkText("bad.yaml", text);
  equal(r.config, undefined);
  const lines = r.issues.map(formatIssue);
  const want = [
    /^bad\.yaml:1:1: logLevl: unknown key; did you mean "logLevel"\?$/,
    /^bad\.yaml:4:5: modules\.edgeDNS\.listenPort: must be at most 65535, got 99999$/,
    /^bad\.yaml:5:5: modules\.edgeDNS\.ttl: must be a duration/,
    /^bad\.yaml:6:32: modules\.edgeDNS\.listenAddress\[1\]: must be an IPv4 or IPv6 address, got "nope"$/,
    /^bad\.yaml:11:9: modules\.edgeTunnel\.relayNodes\[1\]\.nodeName: must not be empty$/,
    /^bad\.yaml:12:9: modules\.edgeTunnel\.relayNodes\[1\]\.advertiseAddres: unknown key; did you mean "advertiseAddress"\?$/,
    /^bad\.yaml:14:5: modules\.edgeHealth\.probeInterval: must be a duration/,
    /^bad\.yaml:16:3: commonConfig\.adminAddress: must be "host:port"/,
  ];
  equal(lines.length, want.length, lines.join("\n"));
  want.forEach((re, i) => match(lines[i], re));
});

Deno.test("YAML syntax errors and duplicate keys carry their position", () => {
  const r = checkText("s.yaml", "a: [\n b: c");
  equal(r.config, undefined);
  match(formatIssue(r.issues[0]), /^s\.yaml:\d+:\d+: /);
  const d = checkText("d.yaml", "logLevel: info\nlogLevel: debug\n");
  equal(d.config, undefined);
  match(formatIssue(d.issues[0]), /^d\.yaml:2:1: .*[Mm]ap keys must be unique/);
  const top = checkText("l.yaml", "- a\n- b\n");
  match(formatIssue(top.issues[0]), /top level/);
});

Deno.test("a disabled module is checked for structure but not for values", () => {
  const r = checkText(
    "x.yaml",
    "modules:\n  edgeGateway:\n    enable: false\n    includeIP: [not-an-ip]\n",
  );
  ok(r.config, r.issues.map(formatIssue).join("\n"));
  const bad = checkText(
    "x.yaml",
    "modules:\n  edgeGateway:\n    enable: false\n    includIP: [1.2.3.4]\n",
  );
  equal(bad.config, undefined);
  const on = checkText(
    "x.yaml",
    "modules:\n  edgeGateway:\n    enable: true\n    includeIP: [not-an-ip]\n",
  );
  equal(on.config, undefined);
});

Deno.test("cross-field checks: health timings and identity files", () => {
  const r = checkText(
    "h.yaml",
    "modules:\n  edgeHealth:\n    probeInterval: 10s\n    probeTimeout: 10s\n    voteTimeout: 15s\n",
  );
  deepStrictEqual(r.issues.map((i) => i.path).sort(), [
    "modules.edgeHealth.probeTimeout",
    "modules.edgeHealth.voteTimeout",
  ]);
  const id = checkText(
    "i.yaml",
    "modules:\n  edgeTunnel:\n    identity:\n      certFile: /a.crt\n",
  );
  deepStrictEqual(id.issues.map((i) => i.path), ["modules.edgeTunnel.identity"]);
});

Deno.test("layers merge lowest first; lists replace, maps merge; flags win", () => {
  const cluster = parseLayer(
    "cluster.yaml",
    "logLevel: warn\nmodules:\n  edgeTunnel:\n    listenPort: 1111\n    relayNodes: [{nodeName: r1}]\n",
  );
  const local = parseLayer(
    "local.yaml",
    "modules:\n  edgeTunnel:\n    relayNodes: [{nodeName: r2}]\n",
  );
  const { config } = loadConfig([cluster, local, flagLayer({ logLevel: "debug" })]);
  equal(config.logLevel, "debug");
  equal(config.modules.edgeTunnel.listenPort, 1111);
  deepStrictEqual(config.modules.edgeTunnel.relayNodes.map((r) => r.nodeName), ["r2"]);
  ok(Object.isFrozen(config.modules.edgeTunnel.relayNodes));
  throws(
    () => loadConfig([flagLayer({ logLevel: "loud" })]),
    (e: unknown) => e instanceof ConfigError && /<command line>/.test(e.message),
  );
});

Deno.test("readConfig() layers the synced cluster file under the local file and ignores node-local keys in it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/state`);
    await Deno.writeTextFile(`${dir}/local.yaml`, `commonConfig:\n  stateDir: ${dir}/state\n`);
    await Deno.writeTextFile(
      `${dir}/state/edgemesh-agent.yaml`,
      "nodeName: stolen\nmodules:\n  edgeTunnel:\n    relayNodes: [{nodeName: relay-a, advertiseAddress: [198.18.0.11]}]\n",
    );
    const r = await readConfig({ localFile: `${dir}/local.yaml`, clusterLayer: true });
    ok(r.config, r.issues.map(formatIssue).join("\n"));
    equal(r.config.nodeName, "");
    deepStrictEqual(r.config.modules.edgeTunnel.relayNodes[0].nodeName, "relay-a");
    ok(r.issues.some((i) => i.path === "nodeName" && i.severity === "warning"));
    const missing = await readConfig({ localFile: `${dir}/absent.yaml` });
    deepStrictEqual(missing.config, defaultConfig());
    deepStrictEqual(missing.files, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("diffPaths() names the changed leaves", () => {
  const a = defaultConfig();
  const b = checkText(
    "x",
    "logLevel: debug\nmodules:\n  edgeTunnel:\n    relayNodes: [{nodeName: r}]\n",
  ).config!;
  deepStrictEqual(diffPaths(a, b), ["logLevel", "modules.edgeTunnel.relayNodes"]);
});
