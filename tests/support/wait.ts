/** Waiting on conditions with a deadline (never a bare sleep). */

export class WaitTimeout extends Error {
  override name = "WaitTimeout";
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  what?: string;
}

/**
 * Polls `cond` until it returns a truthy value (returned) or the deadline passes (throws,
 * naming what was awaited). Errors thrown by `cond` count as "not yet" and are reported.
 * Call as `waitFor(cond, "what", timeoutMs?, intervalMs?)` or `waitFor(cond, { what, timeoutMs })`.
 */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  whatOrOptions: string | WaitOptions = {},
  timeoutMs?: number,
  intervalMs?: number,
): Promise<NonNullable<T>> {
  const o: WaitOptions = typeof whatOrOptions === "string"
    ? { what: whatOrOptions, timeoutMs, intervalMs }
    : whatOrOptions;
  const limit = o.timeoutMs ?? 5000;
  const deadline = performance.now() + limit;
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
        `timed out after ${limit} ms waiting for ${o.what ?? "condition"}` +
          (lastErr ? ` (last error: ${(lastErr as Error).message})` : ""),
      );
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 10));
  }
}
