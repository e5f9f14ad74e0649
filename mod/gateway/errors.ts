/** Named errors of the gateway module. Each carries the object or address it is about. */

/** A VirtualService that cannot be used; it is logged and skipped, others keep working. */
export class VirtualServiceError extends Error {
  override name = "VirtualServiceError";
  constructor(readonly key: string, readonly field: string, message: string) {
    super(`VirtualService "${key}" is invalid at ${field}: ${message}`);
  }
}

/** A TLS credential Secret that is missing or does not parse. */
export class CredentialError extends Error {
  override name = "CredentialError";
  constructor(readonly secret: string, message: string, options?: ErrorOptions) {
    super(`TLS credential Secret "${secret}": ${message}`, options);
  }
}

/** A listener that could not be bound. */
export class BindError extends Error {
  override name = "BindError";
  constructor(readonly address: string, readonly port: number, options?: ErrorOptions) {
    const why = options?.cause instanceof Error ? options.cause.message : String(options?.cause);
    super(`Cannot bind gateway listener on "${address}:${port}": ${why}`, options);
  }
}

/** A malformed HTTP/1.1 message (from the client or the upstream). */
export class HttpParseError extends Error {
  override name = "HttpParseError";
  constructor(message: string, readonly tooLarge = false) {
    super(message);
  }
}
