/** Named errors of the DNS module. */

/** A listener could not be bound (address in use, address not on this host, no permission). */
export class DnsBindError extends Error {
  override name = "DnsBindError";
  constructor(
    readonly address: string,
    readonly port: number,
    readonly transport: "udp" | "tcp",
    reason: string,
    options?: ErrorOptions,
  ) {
    super(
      `Cannot bind DNS listener on "${formatHostPort(address, port)}" (${transport}): ${reason}`,
      options,
    );
  }
}

/** The options handed to the DNS service are not usable; lists every problem found. */
export class DnsOptionsError extends Error {
  override name = "DnsOptionsError";
  constructor(readonly problems: readonly string[]) {
    super(`Invalid DNS options: ${problems.join("; ")}`);
  }
}

/** Why a forwarded query produced no answer. */
export type UpstreamFailure = "timeout" | "network" | "servfail" | "refused" | "malformed";

/** No upstream server answered a forwarded query in time. */
export class UpstreamError extends Error {
  override name = "UpstreamError";
  constructor(
    readonly reason: UpstreamFailure,
    readonly upstream: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`Upstream DNS server ${upstream} failed: ${message}`, options);
  }
}

/** `ip:port`, with brackets around IPv6 addresses. */
export function formatHostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
