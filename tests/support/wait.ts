/** Waiting on conditions with a deadline (never a bare sleep). */

export class WaitTimeout extends Error {
  override name = "WaitTimeout";
}

/**
 * Polls `cond` until it returns a truthy value (returned) or the deadline passes (throws,
 * naming `what`). Errors thrown by `cond` count as "not yet".
 */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = performance.now() + (opts.timeoutMs ?? 5000);
  let lastErr: unknown;
  while (true) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastErr = err;
    }
    if (performance.now() > deadline) {
      throw new WaitTimeout(
        `timed out after ${opts.timeoutMs ?? 5000} ms waiting for ${opts.what ?? "condition"}` +
          (lastErr ? ` (last error: ${(lastErr as Error).message})` : ""),
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}
