/**
 * The service proxy: Kubernetes Services on the edge. One listener per proxied service port
 * (TCP relay, HTTP/1.1 head parsing when the balancer needs it, TLS passthrough with SNI,
 * UDP flows), endpoints picked by `mod/lb` with locality (this node, then the LAN, then the
 * tunnel `Dialer`), retries and passive outlier marks, and iptables interception
 * (`EDGEMESH-*` chains) with a `cleanup()` for `edgemesh cleanup`.
 * @module
 */
export { type ProxyDeps, ServiceProxy } from "./proxy.ts";
export { type ServiceStatusRow } from "./status.ts";
export {
  DEFAULT_PROXY_OPTIONS,
  type ProxyOptions,
  resolveProxyOptions,
  type ServiceFilterMode,
} from "./options.ts";
export {
  cleanup,
  type CommandResult,
  type CommandRunner,
  commandRunner,
  type InterceptRule,
  Proxier,
  renderRules,
} from "./iptables.ts";
export {
  buildServiceTable,
  type ProxyEndpoint,
  type ProxyPort,
  SERVICE_PROXY_NAME_LABEL,
} from "./service_table.ts";
export { type PortKind, portKind } from "./app_protocol.ts";
export { HttpHeadError, IptablesError, ListenError } from "./errors.ts";
export {
  resolveSocksTarget,
  type Socks5Deps,
  type Socks5Options,
  Socks5Server,
  type Socks5Target,
} from "./socks5.ts";
