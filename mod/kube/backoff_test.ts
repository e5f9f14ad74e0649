import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { backoffDelay, sleep, TokenBucket } from "./backoff.ts";

Deno.test("backoffDelay grows exponentially, stays within its jitter band and is capped", () => {
  const o = { initialMs: 100, maxMs: 1000, jitter: 0.5 };
  assertEquals([1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, o, () => 0.5)), [
    100,
    200,
    400,
    800,
    1000,
    1000,
  ]);
  assertEquals(backoffDelay(3, o, () => 0), 200);
  assertEquals(backoffDelay(3, o, () => 1), 600);
  assertEquals(backoffDelay(10, o, () => 1), 1000);
});

Deno.test("TokenBucket allows a burst, then paces requests at qps", () => {
  let now = 0;
  const tb = new TokenBucket(10, 3, () => now);
  assertEquals([tb.take(), tb.take(), tb.take()], [0, 0, 0]);
  assertEquals(tb.take(), 100);
  now += 1000;
  assertEquals(tb.take(), 0);
  assertEquals(new TokenBucket(0, 0).take(), 0, "qps 0 means unlimited");
});

Deno.test("sleep ends early when its signal aborts", async () => {
  const ctl = new AbortController();
  const t0 = performance.now();
  const p = sleep(10_000, ctl.signal);
  ctl.abort();
  await p;
  assert(performance.now() - t0 < 1000);
});
