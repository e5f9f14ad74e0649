/**
 * edgemesh: the data plane of an edge Kubernetes cluster in one process — tunnel, proxy,
 * DNS, health and gateway. This file is the command line and the only composition root.
 * @module
 */

import { flagHelp, type FlagSpec, type FlagValues, parseArgs, UsageError } from "./mod/cli/mod.ts";
import {
  checkText,
  CLUSTER_CONFIG_FILE,
  type Config,
  type ConfigChange,
  ConfigWatcher,
  defaultsYaml,
  formatIssue,
  parseDuration,
  parseHostPort,
  readConfig,
} from "./mod/config/mod.ts";
import { createLogger, isLogLevel, type Logger, LogLevelRef } from "./mod/log/mod.ts";
import { Registry } from "./mod/metrics/mod.ts";
import { type Service, ServiceGroup } from "./mod/lifecycle/mod.ts";
import { MemoryTrimmer } from "./mod/memory/mod.ts";
import { AdminServer, renderStatus, type RouteHandler } from "./mod/admin/mod.ts";
import { type Dialer, DialError, type HealthView, UNKNOWN_HEALTH } from "./mod/contracts/mod.ts";
import { BridgeDevice, localAddresses, removeBridge } from "./mod/hostnet/mod.ts";
import { GatewayService } from "./mod/gateway/mod.ts";
import {
  type ClusterSourceKind,
  ClusterState,
  NodeAnnotationWriter,
  nodeCloudNotReady,
  StoreCatalog,
} from "./mod/kube/mod.ts";
import { createDnsServer, type DnsServer, upstreamsFromResolvConf } from "./mod/dns/mod.ts";
import { ConfigSync } from "./mod/configsync/mod.ts";
import {
  AdmissionConfigError,
  AdmissionReviewer,
  Health,
  type HealthIdentity,
  loadOrCreateIdentity,
  serveAdmission,
} from "./mod/health/mod.ts";
import {
  cleanup as cleanupIptables,
  commandRunner,
  ServiceProxy,
  Socks5Server,
} from "./mod/proxy/mod.ts";
import { SystemdNotifier } from "./mod/systemd/mod.ts";
import { VERSION, versionInfo } from "./mod/version.ts";

const DEFAULT_CONFIG = "/etc/edgemesh/edgemesh.yaml";
const DEFAULT_ADMIN = "127.0.0.1:10551";

interface Command {
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  run(values: FlagValues, positionals: string[]): Promise<number>;
  /** Sub-commands ("config check"). */
  sub?: Record<string, Command>;
}

const configFlag: FlagSpec = {
  type: "string",
  arg: "PATH",
  description: `Config file (default ${DEFAULT_CONFIG}).`,
};

const COMMANDS: Record<string, Command> = {
  agent: {
    summary: "Run the edge agent (tunnel, proxy, DNS, health, gateway).",
    usage: "edgemesh agent [--config PATH] [--log-level LEVEL] [--node-name NAME]",
    flags: {
      config: configFlag,
      "config-if-present": {
        type: "string",
        arg: "PATH",
        description: "Use this config file when it exists and --config is not given.",
        hidden: true,
      },
      "log-level": {
        type: "string",
        arg: "LEVEL",
        description: "error, warn, info or debug (overrides logLevel).",
      },
      "node-name": {
        type: "string",
        arg: "NAME",
        description: "This node's name (overrides nodeName).",
      },
    },
    run: runAgent,
  },
  config: {
    summary: "Check a config file or print the defaults.",
    usage: "edgemesh config <check PATH | defaults>",
    flags: {},
    run: () => Promise.resolve(usage("config", "a sub-command is required")),
    sub: {
      check: {
        summary: "Validate a config file: prints ok, or every error with file:line:col (exit 2).",
        usage: "edgemesh config check PATH",
        flags: {},
        run: configCheck,
      },
      defaults: {
        summary: "Print the complete default configuration as YAML.",
        usage: "edgemesh config defaults",
        flags: {},
        run: () => {
          write(defaultsYaml());
          return Promise.resolve(0);
        },
      },
    },
  },
  admission: {
    summary:
      "Run the mutating admission webhook (cloud side): keep Pods of nodes their group votes healthy.",
    usage:
      "edgemesh admission --tls-cert FILE --tls-key FILE [--listen HOST:PORT] [--config PATH] [--namespace NS] [--always-reachable] [--annotation-max-age DUR]",
    flags: {
      listen: {
        type: "string",
        arg: "HOST:PORT",
        description: "HTTPS address (default 0.0.0.0:9443).",
      },
      "tls-cert": {
        type: "string",
        arg: "FILE",
        description: "PEM certificate chain of the webhook.",
      },
      "tls-key": { type: "string", arg: "FILE", description: "PEM private key." },
      config: configFlag,
      namespace: {
        type: "string",
        arg: "NS",
        description: "Namespace of ConfigMap edge-health-config (default kube-system).",
      },
      "always-reachable": {
        type: "boolean",
        description:
          "Global no-eviction: strip every unreachable NoExecute taint (not with unit checking).",
      },
      "annotation-max-age": {
        type: "string",
        arg: "DUR",
        description: "A healthy vote not re-confirmed for this long counts as absent (default 5m).",
      },
      "log-level": { type: "string", arg: "LEVEL", description: "error, warn, info or debug." },
    },
    run: runAdmission,
  },
  cleanup: {
    summary: "Remove what the agent installs (iptables chains, the bridge device).",
    usage: "edgemesh cleanup [--config PATH]",
    flags: { config: configFlag },
    run: runCleanup,
  },
  status: {
    summary: "Show peers, relays, services and health of the running agent.",
    usage: "edgemesh status [--admin HOST:PORT] [--config PATH] [--json]",
    flags: {
      admin: {
        type: "string",
        arg: "HOST:PORT",
        description: `Admin API address (default from the config, else ${DEFAULT_ADMIN}).`,
      },
      config: configFlag,
      json: { type: "boolean", description: "Print the raw JSON." },
    },
    run: runStatus,
  },
  ping: {
    summary: "Ping a node through the tunnel: the path taken and the round-trip time.",
    usage: "edgemesh ping NODE [--admin HOST:PORT] [--config PATH] [--count N]",
    flags: {
      admin: {
        type: "string",
        arg: "HOST:PORT",
        description: `Admin API address (default from the config, else ${DEFAULT_ADMIN}).`,
      },
      config: configFlag,
      count: { type: "string", arg: "N", description: "Number of pings (default 3)." },
    },
    run: runPing,
  },
  version: {
    summary: "Print the version, Deno version and target.",
    usage: "edgemesh version [--json]",
    flags: { json: { type: "boolean", description: "Print JSON." } },
    run: (values) => {
      const v = versionInfo();
      write(
        values.json
          ? JSON.stringify(v) + "\n"
          : `edgemesh ${v.version} (deno ${v.deno}, v8 ${v.v8}, ${v.target})\n`,
      );
      return Promise.resolve(0);
    },
  },
};

const encoder = new TextEncoder();
function write(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text));
}
function writeErr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
}

function topHelp(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length)) + 4;
  return `edgemesh ${VERSION} — the edge data plane: tunnel, proxy, DNS, health, gateway.

Usage: edgemesh <command> [flags]

Commands:
${names.map((n) => `  ${n.padEnd(w)}${COMMANDS[n].summary}`).join("\n")}

Run "edgemesh <command> --help" for a command's flags.
`;
}

function commandHelp(c: Command): string {
  let text = `${c.summary}\n\nUsage: ${c.usage}\n`;
  if (c.sub) {
    text += `\nSub-commands:\n${
      Object.entries(c.sub).map(([n, s]) => `  ${n.padEnd(12)}${s.summary}`).join("\n")
    }\n`;
  }
  text += `\nFlags:\n${flagHelp(c.flags)}\n`;
  return text;
}

function usage(command: string | undefined, message: string): number {
  const c = command ? COMMANDS[command] : undefined;
  writeErr(
    `edgemesh: ${message}\n${
      c ? `Usage: ${c.usage}` : "Usage: edgemesh <command> [flags]; see edgemesh --help"
    }\n`,
  );
  return 2;
}

export async function main(argv: readonly string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    write(topHelp());
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === "--version") argv = ["version"];
  const name = argv[0];
  let cmd = COMMANDS[name];
  if (!cmd) return usage(undefined, `unknown command "${name}"`);
  let rest = argv.slice(1);
  if (cmd.sub && rest.length > 0 && !rest[0].startsWith("-")) {
    const sub = cmd.sub[rest[0]];
    if (!sub) return usage(name, `unknown sub-command "${name} ${rest[0]}"`);
    cmd = sub;
    rest = rest.slice(1);
  }
  let parsed;
  try {
    parsed = parseArgs(rest, cmd.flags);
  } catch (err) {
    if (err instanceof UsageError) {
      writeErr(`edgemesh: ${err.message}\nUsage: ${cmd.usage}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.values.help) {
    write(commandHelp(cmd));
    return 0;
  }
  return await cmd.run(parsed.values, parsed.positionals);
}

async function configCheck(_values: FlagValues, positionals: string[]): Promise<number> {
  if (positionals.length !== 1) return usage("config", "config check needs exactly one PATH");
  const path = positionals[0];
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    writeErr(`${path}: cannot read: ${(err as Error).message}\n`);
    return 2;
  }
  const r = checkText(path, text);
  for (const i of r.issues) (i.severity === "error" ? writeErr : write)(formatIssue(i) + "\n");
  if (!r.config) return 2;
  write("ok\n");
  return 0;
}

async function adminAddressOf(values: FlagValues): Promise<string> {
  const given = values.admin as string | undefined;
  if (given) return given;
  const r = await readConfig({
    localFile: (values.config as string | undefined) ?? DEFAULT_CONFIG,
  });
  return r.config?.commonConfig.adminAddress ?? DEFAULT_ADMIN;
}

async function runPing(values: FlagValues, positionals: string[]): Promise<number> {
  if (positionals.length !== 1) return usage("ping", "ping needs exactly one NODE");
  const count = Number((values.count as string | undefined) ?? 3);
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    return usage("ping", "--count must be 1..1000");
  }
  const admin = await adminAddressOf(values);
  const node = positionals[0];
  let failures = 0;
  for (let i = 0; i < count; i++) {
    let body: { path?: string; relay?: string; rttMs?: number; error?: string };
    try {
      const res = await fetch(`http://${admin}/api/v1/ping?node=${encodeURIComponent(node)}`, {
        signal: AbortSignal.timeout(8000),
      });
      body = await res.json();
    } catch (err) {
      writeErr(
        `edgemesh: cannot reach the agent's admin API at ${admin}: ${(err as Error).message}\n`,
      );
      return 1;
    }
    if (body.error) {
      failures++;
      write(`${node}: ${body.error}\n`);
    } else {
      const via = body.path === "tunnel-relay" ? `via relay ${body.relay}` : body.path;
      write(`${node}: ${via}, rtt ${body.rttMs?.toFixed(2)} ms\n`);
    }
  }
  return failures === count ? 1 : 0;
}

async function runStatus(values: FlagValues): Promise<number> {
  const admin = await adminAddressOf(values);
  let doc: Record<string, unknown>;
  try {
    const res = await fetch(`http://${admin}/api/v1/status`, { signal: AbortSignal.timeout(3000) });
    doc = await res.json();
  } catch (err) {
    writeErr(
      `edgemesh: cannot reach the agent's admin API at ${admin}: ${(err as Error).message}\n` +
        `Is the agent running? Give its address with --admin HOST:PORT.\n`,
    );
    return 1;
  }
  if (values.json) {
    write(JSON.stringify(doc, null, 2) + "\n");
    return 0;
  }
  write(renderStatus(doc, { color: Deno.stdout.isTerminal() }));
  return 0;
}

async function runAdmission(values: FlagValues): Promise<number> {
  const certFile = values["tls-cert"] as string | undefined;
  const keyFile = values["tls-key"] as string | undefined;
  if (!certFile || !keyFile) return usage("admission", "--tls-cert and --tls-key are required");
  const listen = parseHostPort((values.listen as string | undefined) ?? "0.0.0.0:9443");
  if (!listen) return usage("admission", `--listen must be HOST:PORT, got "${values.listen}"`);
  const maxAge = parseDuration((values["annotation-max-age"] as string | undefined) ?? "5m");
  if (maxAge === undefined) {
    return usage(
      "admission",
      `--annotation-max-age must be a duration like "5m", got "${values["annotation-max-age"]}"`,
    );
  }
  const level = (values["log-level"] as string | undefined) ?? "info";
  if (!isLogLevel(level)) {
    return usage("admission", `--log-level must be error, warn, info or debug`);
  }
  const logger = createLogger({ level });
  const log = logger.child("admission");
  const r = await readConfig({
    localFile: (values.config as string | undefined) ?? DEFAULT_CONFIG,
  });
  if (!r.config) {
    for (const i of r.issues) writeErr(formatIssue(i) + "\n");
    return 2;
  }
  let cert: string, key: string;
  try {
    [cert, key] = await Promise.all([Deno.readTextFile(certFile), Deno.readTextFile(keyFile)]);
  } catch (err) {
    writeErr(`edgemesh: cannot read the TLS certificate or key: ${(err as Error).message}\n`);
    return 2;
  }
  const metrics = new Registry();
  const k = r.config.kubeAPIConfig;
  // The webhook reads Nodes and ConfigMaps from the API; it keeps no snapshot of its own.
  const cluster = new ClusterState({ logger: logger.child("cluster"), metrics }, {
    source: clusterSource(k),
    metaServer: k.metaServer.server,
    kubeConfig: k.kubeConfig,
    master: k.master,
    manifestDir: k.manifestDir,
    stateDir: "",
    qps: k.qps,
    burst: k.burst,
  });
  const root = new AbortController();
  const stop = () => root.abort();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  try {
    await cluster.start(root.signal);
    let reviewer: AdmissionReviewer;
    try {
      reviewer = new AdmissionReviewer({
        store: cluster.store,
        logger: log,
        metrics,
        configNamespace: (values.namespace as string | undefined) ?? "kube-system",
      }, { alwaysReachable: values["always-reachable"] === true, maxAnnotationAgeMs: maxAge });
    } catch (err) {
      if (err instanceof AdmissionConfigError) {
        writeErr(`edgemesh: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
    const server = serveAdmission(reviewer, {
      hostname: listen.host,
      port: listen.port,
      cert,
      key,
      signal: root.signal,
      onListen: (a) => log.info("admission webhook ready", { listen: `${a.hostname}:${a.port}` }),
    });
    await server.finished;
  } finally {
    await cluster.stop();
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGINT", stop);
  }
  return 0;
}

async function runCleanup(values: FlagValues): Promise<number> {
  const r = await readConfig({
    localFile: (values.config as string | undefined) ?? DEFAULT_CONFIG,
  });
  const device = r.config?.commonConfig.bridgeDeviceName ?? "edgemesh0";
  let failed = false;
  try {
    const removed = await cleanupIptables(commandRunner());
    write(`iptables: removed ${removed} edgemesh rule(s) and chain(s)\n`);
  } catch (err) {
    failed = true;
    writeErr(`iptables: ${(err as Error).message}\n`);
  }
  try {
    write(`${await removeBridge(device)}\n`);
  } catch (err) {
    failed = true;
    writeErr(`${(err as Error).message}\n`);
  }
  return failed ? 1 : 0;
}

function resolveNodeName(config: Config, flag: string | undefined): string {
  return flag || config.nodeName || Deno.env.get("NODE_NAME") || Deno.hostname();
}

async function runAgent(values: FlagValues): Promise<number> {
  const levelRef = new LogLevelRef("info");
  const logger = createLogger({ level: levelRef });
  const log = logger.child("agent");
  const flagLevel = values["log-level"] as string | undefined;
  if (flagLevel !== undefined && !isLogLevel(flagLevel)) {
    writeErr(`edgemesh: --log-level must be error, warn, info or debug, got "${flagLevel}"\n`);
    return 2;
  }
  const localFile = (values.config as string | undefined) ??
    (values["config-if-present"] as string | undefined) ?? DEFAULT_CONFIG;
  const flags: Record<string, unknown> = {};
  if (flagLevel) flags.logLevel = flagLevel;
  const sources = { localFile, flags, clusterLayer: true };
  const first = await readConfig(sources);
  if (!first.config) {
    for (const i of first.issues) writeErr(formatIssue(i) + "\n");
    writeErr(`edgemesh: invalid configuration; nothing started\n`);
    return 2;
  }
  const config = first.config;
  levelRef.level = config.logLevel;
  if (!first.files.includes(localFile)) {
    log.info("no config file found; running on the embedded defaults", { path: localFile });
  }
  for (const w of first.issues) log.warn("config warning", { issue: formatIssue(w) });
  const nodeName = resolveNodeName(config, values["node-name"] as string | undefined);

  const metrics = new Registry();
  const startedAt = Date.now();
  registerProcessMetrics(metrics, startedAt);
  const reloads = metrics.counter("edgemesh_config_reloads_total", "Config reloads by result.", [
    "result",
  ]);

  let agent: Agent;
  try {
    agent = await composeAgent({ config, nodeName, logger, metrics });
  } catch (err) {
    writeErr(`edgemesh: ${(err as Error).message}\n`);
    return 2;
  }
  const group = new ServiceGroup(agent.services, log);
  const adminHP = parseHostPort(config.commonConfig.adminAddress)!;
  const admin = new AdminServer({
    logger: logger.child("admin"),
    metrics,
    modules: () => group.statuses(),
    status: () => ({
      node: nodeName,
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      degraded: Object.entries(group.statuses()).filter(([, s]) => s.state === "degraded").map((
        [n],
      ) => n),
      modules: group.statuses(),
      ...agent.status(),
    }),
    routes: agent.routes,
  }, {
    hostname: adminHP.host,
    port: adminHP.port,
    metricsPort: config.modules.edgeTunnel.metricConfig.enable
      ? config.modules.edgeTunnel.metricConfig.port
      : 0,
  });
  const notifier = new SystemdNotifier(log, {
    socket: Deno.env.get("NOTIFY_SOCKET"),
    watchdogUsec: Number(Deno.env.get("WATCHDOG_USEC") ?? 0) || undefined,
    bindDir: config.commonConfig.stateDir,
  });

  const root = new AbortController();
  const onSignal = (sig: string) => () => {
    if (root.signal.aborted) return;
    log.info("stopping", { signal: sig });
    root.abort();
  };
  const sigterm = onSignal("SIGTERM");
  const sigint = onSignal("SIGINT");
  Deno.addSignalListener("SIGTERM", sigterm);
  Deno.addSignalListener("SIGINT", sigint);
  const removeSignals = () => {
    Deno.removeSignalListener("SIGTERM", sigterm);
    Deno.removeSignalListener("SIGINT", sigint);
  };

  const watcher = new ConfigWatcher(sources, config, {
    onChange: (change: ConfigChange) => {
      reloads.inc({ result: "applied" });
      const live: string[] = [];
      const restart: string[] = [];
      for (const path of change.changed) {
        if (path === "logLevel") {
          levelRef.level = change.config.logLevel;
          live.push(path);
        } else if (agent.applyLive(path, change.config)) live.push(path);
        else restart.push(path);
      }
      log.info("config reloaded", { applied: live, needsRestart: restart });
    },
    onInvalid: (issues) => {
      reloads.inc({ result: "rejected" });
      log.error("config change rejected; keeping the last good config", {
        errors: issues.filter((i) => i.severity === "error").map(formatIssue),
      });
    },
  });

  const adminGroup = new ServiceGroup([admin], log);
  try {
    await Deno.mkdir(config.commonConfig.stateDir, { recursive: true, mode: 0o700 });
    await adminGroup.start(root.signal);
    await group.start(root.signal);
  } catch (err) {
    log.error("startup failed", { error: err });
    await group.stop();
    await adminGroup.stop();
    removeSignals();
    return 1;
  }
  watcher.start();
  // The synced cluster config may have been written while the modules started (before the
  // watcher ran): read the layers once more so it is applied now, not at its next change.
  await watcher.reload();
  log.info("agent ready", { node: nodeName, admin: admin.address, version: VERSION });
  agent.afterStart();
  await notifier.ready(`serving as ${nodeName}`);

  await new Promise<void>((resolve) =>
    root.signal.addEventListener("abort", () => resolve(), { once: true })
  );
  const deadline = setTimeout(() => {
    log.error("shutdown did not finish within 5 s; exiting");
    Deno.exit(1);
  }, 5000);
  await notifier.stopping();
  await watcher.stop();
  await group.stop();
  await adminGroup.stop();
  await notifier.close();
  clearTimeout(deadline);
  removeSignals();
  log.info("stopped");
  return 0;
}

function registerProcessMetrics(metrics: Registry, startedAt: number): void {
  metrics.gauge("edgemesh_build_info", "Build information.", ["version", "target"]).set(1, {
    version: VERSION,
    target: Deno.build.target,
  });
  metrics.gauge("process_resident_memory_bytes", "Resident memory size in bytes.").collect((set) =>
    set(Deno.memoryUsage().rss)
  );
  metrics.gauge("process_heap_used_bytes", "JS heap used in bytes.").collect((set) =>
    set(Deno.memoryUsage().heapUsed)
  );
  metrics.gauge("edgemesh_uptime_seconds", "Seconds since the agent started.").collect((set) =>
    set((Date.now() - startedAt) / 1000)
  );
}

/** What the composition hands to the agent runner. */
interface Agent {
  /** Stages started in this order (a stage's services together), stopped in reverse. */
  services: Service[][];
  /** Sections of /api/v1/status. */
  status(): Record<string, unknown>;
  routes: Record<string, RouteHandler>;
  /** Applies a changed config path live; false when it needs a restart. */
  applyLive(path: string, config: Readonly<Config>): boolean;
  /** Runs once every stage has started. */
  afterStart(): void;
}

/**
 * Addresses gateway servers bind: the addresses of the chosen interfaces (`interfaces`, or
 * EdgeMesh's `nic`; all when empty or "*"), or `includeIP` when it names addresses, minus
 * `excludeIP`.
 */
function gatewayAddresses(g: Readonly<Config["modules"]["edgeGateway"]>): string[] {
  const names = g.interfaces.length ? g.interfaces.join(",") : g.nic;
  const include = g.includeIP.filter((ip) => ip !== "*");
  const base = include.length
    ? include
    : localAddresses({ listenInterfaces: names, includeLoopback: names !== "*" }).map((a) =>
      a.address
    );
  const exclude = new Set(g.excludeIP.filter((ip) => ip !== "*"));
  return base.filter((ip) => !exclude.has(ip));
}

/** Where cluster state comes from: a manifests folder, a kube-apiserver, or the metaserver. */
function clusterSource(k: Readonly<Config["kubeAPIConfig"]>): ClusterSourceKind {
  return k.manifestDir ? "manifests" : (k.kubeConfig || k.master) ? "kubeconfig" : "metaserver";
}

/** Whether ip:port/protocol is an endpoint the catalog places on this node. */
function isLocalEndpoint(
  catalog: StoreCatalog,
  nodeName: string,
  ip: string,
  port: number,
  protocol: "tcp" | "udp",
): boolean {
  const proto = protocol === "tcp" ? "TCP" : "UDP";
  for (const svc of catalog.services()) {
    for (const ep of svc.endpoints) {
      if (ep.nodeName !== nodeName || ep.ip !== ip) continue;
      if (Object.values(ep.ports).some((p) => p.port === port && p.protocol === proto)) return true;
    }
  }
  return false;
}

/**
 * Reads the PSK file: at least 32 bytes of random content. A missing, short or constant file
 * is a startup error that says how to make one.
 */
async function readPsk(path: string): Promise<Uint8Array> {
  const make =
    `generate one with: openssl rand -base64 32 > ${path} (the same file on every node), ` +
    `or set modules.edgeTunnel.psk.enable: false`;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw new Error(`Cannot read the PSK file "${path}": ${(err as Error).message}; ${make}`);
  }
  const distinct = new Set(bytes).size;
  if (bytes.length < 32 || distinct < 8) {
    throw new Error(
      `The PSK file "${path}" is a weak key (${bytes.length} bytes, ${distinct} distinct); ${make}`,
    );
  }
  return bytes;
}

async function readResolvConf(logger: Logger): Promise<string> {
  try {
    return await Deno.readTextFile("/etc/resolv.conf");
  } catch (err) {
    logger.warn("cannot read /etc/resolv.conf; no DNS upstream for names outside the cluster", {
      error: err,
    });
    return "";
  }
}

/** A Dialer for agents that run without the tunnel: cross-node targets are unreachable. */
const NO_TUNNEL: Dialer = {
  dialStream: (target) =>
    Promise.reject(new DialError("unreachable", target, "the tunnel module is disabled")),
  dialDatagram: (target) =>
    Promise.reject(new DialError("unreachable", target, "the tunnel module is disabled")),
};

/** Builds every enabled part from the config. The only place that knows them all. */
async function composeAgent(
  { config, nodeName, logger, metrics }: {
    config: Readonly<Config>;
    nodeName: string;
    logger: Logger;
    metrics: Registry;
  },
): Promise<Agent> {
  const m = config.modules;
  const common = config.commonConfig;
  const bridgeIP = common.bridgeDeviceIP;
  // Stages: the host and cluster state; config sync; the mesh; the serving modules
  // (independent of each other, started together); what builds on them.
  const base: Service[] = [];
  const sync: Service[] = [];
  const mesh: Service[] = [];
  const serving: Service[] = [];
  const late: Service[] = [];

  // The bridge device, when a listener needs the bridge IP.
  const dnsAddrs = m.edgeDNS.listenAddress.length ? [...m.edgeDNS.listenAddress] : [bridgeIP];
  const proxyAddr = m.edgeProxy.listenAddress || bridgeIP;
  const socksAddr = m.edgeProxy.socks5Proxy.listenAddress || bridgeIP;
  const needsBridge = (m.edgeDNS.enable && dnsAddrs.includes(bridgeIP)) ||
    (m.edgeProxy.enable && proxyAddr === bridgeIP) ||
    (m.edgeProxy.enable && m.edgeProxy.socks5Proxy.enable && socksAddr === bridgeIP);
  if (needsBridge) {
    base.push(
      new BridgeDevice({ logger: logger.child("bridge") }, {
        device: common.bridgeDeviceName,
        ip: bridgeIP,
      }),
    );
  }

  // Cluster state first: everything else reads it.
  const k = config.kubeAPIConfig;
  const cluster = new ClusterState({ logger: logger.child("cluster"), metrics }, {
    source: clusterSource(k),
    metaServer: k.metaServer.server,
    kubeConfig: k.kubeConfig,
    master: k.master,
    manifestDir: k.manifestDir,
    stateDir: common.stateDir,
    qps: k.qps,
    burst: k.burst,
    // Plain HTTP on loopback: fetch saves ~32 MB RSS over client-node (measured).
    httpClient: "fetch",
  });
  base.push(cluster);
  // Freed socket and stream buffers go back to the kernel (glibc keeps them otherwise).
  const trimmer = new MemoryTrimmer({ logger: logger.child("memory"), metrics });
  base.push(trimmer);
  const store = cluster.store;
  const catalog = new StoreCatalog(store);
  sync.push(
    new ConfigSync({ logger: logger.child("configsync"), metrics, store }, {
      file: `${common.stateDir}/${CLUSTER_CONFIG_FILE}`,
    }),
  );

  let dialer: Dialer = NO_TUNNEL;
  let tunnel: import("./mod/tunnel/mod.ts").Tunnel | undefined;
  let healthIdentity: HealthIdentity | undefined;
  let peerKey: ((node: string) => Uint8Array | undefined) | undefined;
  if (m.edgeTunnel.enable) {
    const t = m.edgeTunnel;
    // Loaded only when enabled: libp2p costs ~48 MB of memory.
    const tunnelMod = await import("./mod/tunnel/mod.ts");
    const { peerIdFromString } = await import("@libp2p/peer-id");
    const psk = t.psk.enable ? await readPsk(t.psk.path) : undefined;
    const listen = t.listenAddress.length ? [...t.listenAddress] : localAddresses({
      listenInterfaces: t.listenInterfaces,
      extraFilteredInterfaces: t.extraFilteredInterfaces,
    }).map((a) => a.address);
    // Besides hostPorts, health members reach each other's health (and kubelet) port through
    // the tunnel when no direct path exists.
    const hostPorts = new Set([
      ...t.hostPorts,
      ...(m.edgeHealth.enable ? [m.edgeHealth.listenPort] : []),
      ...(m.edgeHealth.enable && m.edgeHealth.kubeletPort > 0 ? [m.edgeHealth.kubeletPort] : []),
    ]);
    const ownAddresses = new Set(
      localAddresses({ includeLoopback: true, listenInterfaces: "*" }).map((a) => a.address),
    );
    for (const ip of listen) ownAddresses.add(ip);
    const tun = new tunnelMod.Tunnel({
      logger: logger.child("tunnel"),
      metrics,
      localTargets: {
        allowed: (ip, port, protocol) =>
          (hostPorts.has(port) && ownAddresses.has(ip)) ||
          isLocalEndpoint(catalog, nodeName, ip, port, protocol),
      },
    }, {
      nodeName,
      listenAddresses: listen,
      listenPort: t.listenPort,
      stateDir: common.stateDir,
      rendezvous: t.rendezvous,
      relayNodes: t.relayNodes.map((r) => ({
        nodeName: r.nodeName,
        advertiseAddress: [...r.advertiseAddress],
      })),
      bootstrapPeers: [...t.bootstrapPeers],
      mdns: t.mdns.enable,
      psk,
      enableHolePunch: t.enableHolePunch,
      relayOnly: t.relayOnly,
      selfRelay: t.selfRelay,
      // KubeEdge's node certificate signs our claims; peers' claims must carry theirs.
      identity: t.identity.certFile
        ? { certFile: t.identity.certFile, keyFile: t.identity.keyFile, caFile: t.identity.caFile }
        : undefined,
      heartbeatPeriodMs: t.heartbeatPeriod,
      finderPeriodMs: t.finderPeriod,
      maxCandidates: t.maxCandidates,
      knownNodes: () => new Set(store.list("nodes").map((n) => n.metadata.name)),
    });
    tunnel = tun;
    dialer = tun;
    mesh.push(tun);
    // Health signs with the same key as the peer ID; peers' keys come from verified claims.
    const key = await tunnelMod.loadOrCreateIdentity(common.stateDir);
    healthIdentity = { publicKey: key.publicKey.raw, sign: async (bytes) => await key.sign(bytes) };
    peerKey = (node) => {
      const id = tun.peerIdOf(node);
      return id ? peerIdFromString(id).publicKey?.raw : undefined;
    };
  }

  let health: HealthView = UNKNOWN_HEALTH;
  let healthModule: Health | undefined;
  if (m.edgeHealth.enable) {
    const h = m.edgeHealth;
    healthModule = new Health({
      logger: logger.child("health"),
      metrics,
      store,
      identity: healthIdentity ?? await loadOrCreateIdentity(common.stateDir),
      peerKey,
      // Exchanges and probes fall back to the tunnel for members with no direct path.
      dialer: tunnel,
      // The manifests source has no API: verdicts still steer local traffic, nothing is written.
      writer: k.manifestDir
        ? { patchNodeAnnotations: () => Promise.resolve() }
        : new NodeAnnotationWriter({ server: k.master || k.metaServer.server }),
    }, {
      nodeName,
      listenAddress: h.listenAddress || "0.0.0.0",
      listenPort: h.listenPort,
      probeIntervalMs: h.probeInterval,
      probeTimeoutMs: h.probeTimeout,
      probeRetries: h.probeRetries,
      voteTimeoutMs: h.voteTimeout,
      kubeletPort: h.kubeletPort,
      stateDir: common.stateDir,
    });
    health = healthModule;
    serving.push(healthModule);
  }

  let dns: DnsServer | undefined;
  if (m.edgeDNS.enable) {
    const d = m.edgeDNS;
    let upstreams = d.upstreamServers.length
      ? [...d.upstreamServers]
      : [...d.cacheDNS.upstreamServers];
    if (upstreams.length === 0 && d.cacheDNS.autoDetect) {
      upstreams = upstreamsFromResolvConf(await readResolvConf(logger), dnsAddrs);
    }
    dns = createDnsServer({
      logger: logger.child("dns"),
      metrics,
      catalog,
      health,
      nodeCloudNotReady: (node) => nodeCloudNotReady(store, node),
      pods: {
        podsByIP: (ns, ip) =>
          store.list("pods").filter((p) =>
            p.metadata.namespace === ns &&
            (p.status?.podIP === ip || !!p.status?.podIPs?.some((x) => x.ip === ip))
          ).map((p) => ({ name: p.metadata.name })),
      },
    }, {
      listenAddresses: dnsAddrs,
      listenPort: d.listenPort,
      clusterDomain: d.clusterDomain,
      ttlMs: d.ttl,
      upstreamServers: upstreams,
      cacheMaxTtlMs: d.cacheDNS.cacheTTL,
    });
    serving.push(dns);
  }

  let proxy: ServiceProxy | undefined;
  if (m.edgeProxy.enable) {
    const p = m.edgeProxy;
    proxy = new ServiceProxy({ logger, metrics, catalog, store, dialer, health }, {
      nodeName,
      listenAddress: proxyAddr,
      lanDirect: p.lanDirect,
      tcpIdleTimeoutMs: p.tcpIdleTimeout,
      udpIdleTimeoutMs: p.udpIdleTimeout,
      serviceFilterMode: p.serviceFilterMode,
      consistentHash: p.loadBalancer.consistentHash,
      intercept: p.intercept,
    });
    serving.push(proxy);
    if (p.socks5Proxy.enable) {
      const px = proxy;
      late.push(
        new Socks5Server({
          logger: logger.child("socks5"),
          metrics,
          catalog,
          store,
          dialer,
          serviceListener: (ns, name, port) => px.listenerFor(ns, name, port),
        }, {
          nodeName,
          listenAddress: socksAddr,
          listenPort: p.socks5Proxy.listenPort,
          clusterDomain: m.edgeDNS.clusterDomain,
          tcpIdleTimeoutMs: p.tcpIdleTimeout,
        }),
      );
    }
  }

  if (m.edgeGateway.enable) {
    const g = m.edgeGateway;
    serving.push(
      new GatewayService({
        logger: logger.child("gateway"),
        metrics,
        store,
        catalog,
        dialer,
        health,
      }, {
        nodeName,
        nodeLabels: {},
        bindAddresses: gatewayAddresses(g),
        lanDirect: m.edgeProxy.lanDirect,
      }),
    );
  }

  return {
    services: [base, sync, mesh, serving, late].filter((stage) => stage.length > 0),
    status: () => {
      const hs = healthModule?.status();
      return {
        cluster: cluster.details(),
        dns: dns?.details(),
        ...(tunnel
          ? tunnel.snapshot()
          : { peers: [], relays: [], relayService: null, certificate: null }),
        services: proxy?.services() ?? [],
        health: hs ? { group: hs.group, members: hs.members } : { group: null, members: [] },
      };
    },
    routes: {
      "/api/v1/ping": async (_req, url) => {
        const node = url.searchParams.get("node") ?? "";
        if (!tunnel) {
          return Response.json({ error: "the tunnel module is disabled" }, { status: 409 });
        }
        try {
          return Response.json(await tunnel.ping(node, { timeoutMs: 5000 }));
        } catch (err) {
          return Response.json({ error: (err as Error).message }, { status: 502 });
        }
      },
    },
    applyLive: (path, next) => {
      if (path === "modules.edgeTunnel.relayNodes" && tunnel) {
        tunnel.setRelayNodes(
          next.modules.edgeTunnel.relayNodes.map((r) => ({
            nodeName: r.nodeName,
            advertiseAddress: [...r.advertiseAddress],
          })),
        );
        return true;
      }
      return false;
    },
    // What starting allocated and freed (the bundle's parse above all) goes back at once.
    afterStart: () => void trimmer.trim().catch(() => {}),
  };
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
