/** Named errors of the health module. */

/** The health options are invalid (each problem with its field path). */
export class HealthOptionsError extends Error {
  override name = "HealthOptionsError";
  constructor(readonly problems: readonly string[]) {
    super(`Invalid edgeHealth options: ${problems.join("; ")}`);
  }
}

/** The health service could not start (listener, identity or key store). */
export class HealthStartError extends Error {
  override name = "HealthStartError";
  constructor(readonly what: string, readonly value: string, options?: ErrorOptions) {
    const cause = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(`Cannot start health: ${what} "${value}"${cause}`, options);
  }
}

/** A state file in stateDir (identity key, pinned peer keys) is unreadable or corrupt. */
export class HealthStateError extends Error {
  override name = "HealthStateError";
  constructor(readonly path: string, message: string, options?: ErrorOptions) {
    super(`Health state file "${path}": ${message}`, options);
  }
}

/** A wire message could not be decoded. */
export class WireFormatError extends Error {
  override name = "WireFormatError";
  constructor(message: string) {
    super(`Malformed health message: ${message}`);
  }
}

/** A health request through the tunnel got no usable answer (the dial itself fails with DialError). */
export class HealthTunnelError extends Error {
  override name = "HealthTunnelError";
  constructor(
    readonly code: "timeout" | "too-large" | "malformed",
    readonly target: string,
    message: string,
  ) {
    super(`Health request through the tunnel to ${target}: ${message}`);
  }
}

/**
 * `--always-reachable` (global no-eviction) together with unit checking
 * (`unit-internal-check: "true"` in `kube-system/edge-health-config`) is refused.
 */
export class AdmissionConfigError extends Error {
  override name = "AdmissionConfigError";
  constructor(message: string) {
    super(message);
  }
}
