/** Errors of the load-balancing module. */

/** A DestinationRule whose load-balancer settings cannot be honoured; the rule is ignored. */
export class InvalidDestinationRuleError extends Error {
  override name = "InvalidDestinationRuleError";
  constructor(
    readonly namespace: string,
    readonly ruleName: string,
    /** Each problem with its field path, e.g. `spec.trafficPolicy.loadBalancer.simple: …`. */
    readonly problems: readonly string[],
  ) {
    super(`DestinationRule "${namespace}/${ruleName}" is ignored: ${problems.join("; ")}`);
  }
}
