import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { createLogger, LogLevelRef, LogRateLimiter, memoryLogger } from "./mod.ts";

Deno.test("Logger writes one JSON object per line with ts, level, component, msg and fields", () => {
  const lines: string[] = [];
  const log = createLogger({ sink: (l) => lines.push(l), now: () => 0, level: "debug" }).child(
    "dns",
    { listener: "udp" },
  );
  log.info("served", { qps: 5, error: new Error("boom", { cause: new Error("root") }) });
  equal(lines.length, 1);
  deepStrictEqual(JSON.parse(lines[0]), {
    ts: "1970-01-01T00:00:00.000Z",
    level: "info",
    component: "dns",
    msg: "served",
    listener: "udp",
    qps: 5,
    error: { name: "Error", message: "boom", cause: { name: "Error", message: "root" } },
  });
});

Deno.test("the level is shared by children and can change at run time", () => {
  const ref = new LogLevelRef("warn");
  const lines: string[] = [];
  const child = createLogger({ level: ref, sink: (l) => lines.push(l) }).child("proxy");
  child.info("hidden");
  ref.level = "debug";
  child.debug("shown");
  equal(lines.length, 1);
  ok(child.enabled("debug"));
  const { logger, lines: mem } = memoryLogger();
  logger.child("a").child("b").warn("x");
  equal(mem[0].component, "a.b");
});

Deno.test("LogRateLimiter allows a burst per window and reports what it suppressed", () => {
  let t = 0;
  const rl = new LogRateLimiter(2, 1000, () => t);
  equal(rl.allow("k"), 0);
  equal(rl.allow("k"), 0);
  equal(rl.allow("k"), undefined);
  equal(rl.allow("k"), undefined);
  t = 1000;
  equal(rl.allow("k"), 2);
});
