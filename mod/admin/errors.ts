/** Admin API errors. */

export class AdminBindError extends Error {
  override name = "AdminBindError";
  constructor(readonly address: string, cause: unknown) {
    super(
      `Cannot bind admin API on "${address}": ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
}
