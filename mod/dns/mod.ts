/**
 * DNS: the node's resolver. Answers the cluster zone (`<svc>.<ns>.svc.<domain>`, headless
 * endpoints, SRV, PTR, pod names, the short forms `<svc>.<ns>[.svc]`, ExternalName as a
 * CNAME followed to its target) from precomputed wire bytes recompiled when the service
 * catalog or health view changes, and forwards everything else to upstream servers through a
 * TTL-honouring cache. UDP and TCP on every listen address. UDP is received either by the
 * batched path (recvmmsg/sendmmsg in a worker through FFI, Linux x86_64/aarch64 with
 * --allow-ffi) or the portable one (`Deno.listenDatagram`); `status()` names the one in use.
 * `DnsServer` follows the lifecycle contract.
 * @module
 */
export {
  batchedUdp,
  createDnsServer,
  type DnsDeps,
  type DnsListenerStatus,
  DnsServer,
  type DnsStatusDetail,
  portableUdp,
  type UdpListenerArgs,
  type UdpListenerFactory,
} from "./server.ts";
export {
  DNS_DEFAULTS,
  type DnsOptions,
  parseUpstream,
  type ResolvedDnsOptions,
  resolveDnsOptions,
  type Upstream,
  upstreamsFromResolvConf,
} from "./options.ts";
export { DnsBindError, DnsOptionsError, UpstreamError, type UpstreamFailure } from "./errors.ts";
export { batchedPathAvailable } from "./ffi_libc.ts";
export type { PodLookup } from "./zone.ts";
export type { UpstreamStatus } from "./forwarder.ts";
export type { QueryHandler, Transport } from "./handler.ts";
export type { UdpListener, UdpPath } from "./udp_listener.ts";
