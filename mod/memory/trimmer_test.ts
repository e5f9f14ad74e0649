import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { memoryLogger } from "../log/mod.ts";
import { Registry } from "../metrics/mod.ts";
import { MemoryTrimmer } from "./trimmer.ts";

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("the trimmer calls glibc's malloc_trim on its interval and counts what it gave back", async () => {
  const metrics = new Registry();
  const { logger } = memoryLogger();
  let rss = 300 << 20;
  // RSS readings: each trim "gives back" 1 MiB between its before and after readings.
  const t = new MemoryTrimmer({ logger, metrics, rss: () => (rss -= 512 << 10) }, {
    intervalMs: 10,
  });
  try {
    await t.start(new AbortController().signal);
    assertEquals(t.status(), { state: "ready", detail: "malloc_trim every 0.01 s" });
    const trims = () =>
      Number(/^edgemesh_memory_trims_total (\d+)/m.exec(metrics.render())?.[1] ?? 0);
    await until(() => trims() >= 2, 5000, "two trims on the interval");
    const released = await t.trim();
    assertEquals(released, 512 << 10);
    match(metrics.render(), /^edgemesh_memory_trim_released_bytes_total \d+/m);
  } finally {
    await t.stop();
  }
  assertEquals(await t.trim(), 0, "a stopped trimmer does nothing");
});

Deno.test("without malloc_trim (no glibc) the trimmer is off, says why, and does nothing", async () => {
  const { logger, lines } = memoryLogger();
  const t = new MemoryTrimmer({ logger, metrics: new Registry() }, {
    libcPaths: ["/nonexistent/libc.so.6"],
  });
  await t.start(new AbortController().signal);
  const s = t.status();
  assertEquals(s.state, "ready");
  match(s.detail, /^off: /);
  assertEquals(await t.trim(), 0);
  assert(lines.some((l) => l.msg === "memory trimming off: no malloc_trim here"));
  await t.stop();
});
