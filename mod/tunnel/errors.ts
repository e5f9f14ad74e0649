/** Named errors of the tunnel. */

/**
 * The identity key or the pinned bindings in `stateDir` cannot be read or written, or the
 * KubeEdge certificate identity (certificate, key, CA) is unusable; `path` names the file.
 */
export class IdentityError extends Error {
  override name = "IdentityError";
  constructor(readonly path: string, message: string, options?: ErrorOptions) {
    super(`Tunnel identity "${path}": ${message}`, options);
  }
}

/** A claim (node name ↔ peer ID) was malformed, badly signed or refused. */
export class ClaimError extends Error {
  override name = "ClaimError";
  constructor(
    readonly reason:
      | "malformed"
      | "signature"
      | "unknown-node"
      | "conflict"
      | "peer-mismatch"
      | "attestation",
    message: string,
  ) {
    super(message);
  }
}

/** Bad bytes on a tunnel wire protocol (header, reply, datagram frame). */
export class WireError extends Error {
  override name = "WireError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The libp2p host could not start (address in use, bad listen address, bad PSK). */
export class TunnelStartError extends Error {
  override name = "TunnelStartError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
