/** Errors of the service proxy. */

/** A listener for a service port could not be opened. */
export class ListenError extends Error {
  override name = "ListenError";
  constructor(readonly address: string, readonly service: string, options?: ErrorOptions) {
    const why = options?.cause instanceof Error ? options.cause.message : String(options?.cause);
    super(`Cannot open proxy listener on "${address}" for service ${service}: ${why}`, options);
  }
}

/** An iptables command failed. */
export class IptablesError extends Error {
  override name = "IptablesError";
  constructor(readonly command: string, readonly code: number, readonly stderr: string) {
    super(`iptables command "${command}" failed with exit code ${code}: ${stderr.trim()}`);
  }
}

/** The request head of an HTTP connection could not be read. */
export class HttpHeadError extends Error {
  override name = "HttpHeadError";
  constructor(readonly reason: "too_large" | "timeout" | "closed" | "malformed", message: string) {
    super(message);
  }
}
