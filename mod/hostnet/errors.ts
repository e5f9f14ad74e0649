/** Host-network errors. */

export class BridgeError extends Error {
  override name = "BridgeError";
  constructor(
    readonly device: string,
    readonly ip: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`Cannot set up bridge device "${device}" with ${ip}: ${message}`, options);
  }
}
