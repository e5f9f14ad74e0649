import { deepStrictEqual, equal, rejects } from "node:assert/strict";
import { nullLogger } from "../log/mod.ts";
import { type Service, ServiceGroup, type ServiceStatus, StartError } from "./mod.ts";

function fake(
  name: string,
  events: string[],
  opts: { failStart?: boolean; gate?: Promise<void> } = {},
): Service {
  let state: ServiceStatus["state"] = "stopped";
  return {
    name,
    async start() {
      events.push(`start ${name}`);
      await opts.gate;
      if (opts.failStart) throw new Error(`${name} broke`);
      state = "ready";
      events.push(`ready ${name}`);
    },
    stop() {
      events.push(`stop ${name}`);
      state = "stopped";
      return Promise.resolve();
    },
    status: () => ({ state, detail: "" }),
  };
}

Deno.test("ServiceGroup starts stages in order, a stage's services together, and stops in reverse", async () => {
  const events: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const g = new ServiceGroup([
    fake("a", events),
    [fake("b", events, { gate }), fake("c", events)],
    fake("d", events),
  ], nullLogger());
  const started = g.start(AbortSignal.timeout(1000));
  await new Promise((r) => setTimeout(r, 0));
  // c became ready while b still waits: they start concurrently; d waits for the stage.
  deepStrictEqual(events, ["start a", "ready a", "start b", "start c", "ready c"]);
  open();
  await started;
  equal(events.at(-1), "ready d");
  events.length = 0;
  await g.stop();
  await g.stop();
  deepStrictEqual(events, ["stop d", "stop b", "stop c", "stop a"]);
  deepStrictEqual(Object.keys(g.statuses()), ["a", "b", "c", "d"]);
});

Deno.test("ServiceGroup stops what started when a start fails and names the failed service", async () => {
  const events: string[] = [];
  const g = new ServiceGroup([fake("a", events), [
    fake("b", events),
    fake("c", events, { failStart: true }),
  ]], nullLogger());
  await rejects(
    g.start(AbortSignal.timeout(1000)),
    (e: unknown) => e instanceof StartError && e.service === "c" && /c broke/.test(e.message),
  );
  deepStrictEqual(events.filter((e) => e.startsWith("stop")).sort(), [
    "stop a",
    "stop b",
    "stop c",
  ]);
});
