/**
 * The narrowest permission set the shipped agent needs, shared by `deno task compile` and the
 * tests that run the bundle, so that a missing permission fails a test before it fails a user.
 */

/** Folders the agent reads: its config, state, resolv.conf and the kernel's views. */
export const READ_PATHS = [
  "/etc/edgemesh",
  // KubeEdge's node certificate, key and CA (modules.edgeTunnel.identity).
  "/etc/kubeedge",
  "/var/lib/edgemesh",
  "/etc/resolv.conf",
  "/etc/hostname",
  "/proc",
  "/sys",
];
/** Folders it writes: state only (never /etc). */
export const WRITE_PATHS = ["/var/lib/edgemesh"];
/** Programs it runs to manage the bridge device and interception rules. */
export const RUN_PROGRAMS = [
  "ip",
  "iptables",
  "iptables-save",
  "iptables-restore",
  "ip6tables",
  "ip6tables-save",
  "ip6tables-restore",
];
/**
 * Environment variables our own code and the yaml parser read. The flag below is nevertheless
 * a plain `--allow-env`: with the tunnel on, libp2p's logger (`weald`, node flavour) lists the
 * whole environment at import (`Object.keys(process.env)`, for its `DEBUG_*` options) and
 * `supports-color` probes CI variables, so a variable list makes the agent exit at start
 * ("Requires env access"). Found by tests/e2e/scenarios_tunnel_test.ts.
 */
export const ENV_VARS = [
  "NODE_NAME",
  "NOTIFY_SOCKET",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
  "KUBERNETES_PORT",
  // Read by the bundled npm `yaml` parser on every parse (debug switches); without them the
  // agent cannot read its config file under these permissions.
  "LOG_TOKENS",
  "LOG_STREAM",
];
/** System information it reads. */
export const SYS_INFO = ["hostname", "networkInterfaces", "osRelease", "loadavg"];

/**
 * Deno flags for the agent. `extraRead`/`extraWrite` add the folders a test or a custom
 * install uses (config and state elsewhere than the defaults).
 */
export function agentFlags(opts: { extraRead?: string[]; extraWrite?: string[] } = {}): string[] {
  const read = [...READ_PATHS, ...(opts.extraRead ?? [])];
  const write = [...WRITE_PATHS, ...(opts.extraWrite ?? [])];
  return [
    "--unstable-net",
    "--allow-net",
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    `--allow-run=${RUN_PROGRAMS.join(",")}`,
    "--allow-env",
    `--allow-sys=${SYS_INFO.join(",")}`,
    "--allow-ffi",
  ];
}
