import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { memoryLogger } from "../log/mod.ts";
import { waitFor } from "../../tests/support/wait.ts";
import { Reflector } from "./reflector.ts";
import { ClusterStore } from "./store.ts";
import type { KubeTransport, ListResult, WatchEvent, WatchOptions } from "./transport.ts";

/** A scripted transport: each watch call plays the next script entry, then ends. */
class FakeTransport implements KubeTransport {
  readonly server = "fake://";
  calls: string[] = [];
  constructor(
    readonly listResult: ListResult,
    readonly watches: WatchEvent[][],
  ) {}
  list(path: string): Promise<ListResult> {
    this.calls.push(`list ${path}`);
    return Promise.resolve(structuredClone(this.listResult));
  }
  async watch(
    path: string,
    rv: string,
    onEvent: (e: WatchEvent) => void,
    options: WatchOptions,
  ): Promise<void> {
    this.calls.push(`watch ${path} rv=${rv}`);
    const script = this.watches.shift();
    if (!script) {
      // Nothing more to say: stay open until stopped.
      await new Promise<void>((r) =>
        options.signal.addEventListener("abort", () => r(), { once: true })
      );
      return;
    }
    for (const e of script) onEvent(e);
  }
}

const svc = (name: string, rv: string) => ({
  metadata: { namespace: "ns", name, resourceVersion: rv },
  spec: { ports: [{ port: 80 }] },
});

function run(t: FakeTransport) {
  const store = new ClusterStore();
  const events: string[] = [];
  store.on("services:update", (c) => events.push(`${c.type} ${c.object.metadata.name}`));
  const r = new Reflector("services", {
    transport: t,
    store,
    logger: memoryLogger().logger,
    sleep: () => Promise.resolve(),
  });
  const ctl = new AbortController();
  const done = r.run(ctl.signal);
  return { store, events, r, stop: async () => (ctl.abort(), await done) };
}

Deno.test("Reflector watches from the list's version and re-watches from the last event's", async () => {
  const t = new FakeTransport({ items: [svc("a", "5")], resourceVersion: "7" }, [
    [{ type: "ADDED", object: svc("b", "8") }, {
      type: "BOOKMARK",
      object: { metadata: { resourceVersion: "9" } },
    }],
    [{ type: "MODIFIED", object: svc("a", "10") }],
  ]);
  const env = run(t);
  try {
    await waitFor(() => t.calls.length === 4, "list and three watches");
    assertEquals(t.calls, [
      "list /api/v1/services",
      "watch /api/v1/services rv=7",
      "watch /api/v1/services rv=9",
      "watch /api/v1/services rv=10",
    ]);
    assertEquals(env.events, ["added a", "added b", "modified a"]);
  } finally {
    await env.stop();
  }
});

Deno.test("Reflector does not re-list in a loop when the server's list has no resourceVersion", async () => {
  const t = new FakeTransport({ items: [svc("a", "5")], resourceVersion: "" }, [
    [{ type: "ADDED", object: svc("a", "5") }],
  ]);
  const env = run(t);
  try {
    await waitFor(() => t.calls.length === 3, "second watch");
    assertEquals(t.calls.filter((c) => c.startsWith("list")).length, 1);
    assertEquals(env.events, ["added a"], "the synthetic ADDED of an unchanged object is absorbed");
  } finally {
    await env.stop();
  }
});

Deno.test("Reflector re-watches after a non-410 ERROR event and re-lists after a 410 one", async () => {
  const t = new FakeTransport({ items: [], resourceVersion: "3" }, [
    [{ type: "ERROR", object: { kind: "Status", code: 500, reason: "InternalError" } }],
    [{ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } }],
  ]);
  const env = run(t);
  try {
    await waitFor(() => t.calls.length === 5, "five calls");
    assertEquals(t.calls, [
      "list /api/v1/services",
      "watch /api/v1/services rv=3",
      "watch /api/v1/services rv=3",
      "list /api/v1/services",
      "watch /api/v1/services rv=3",
    ]);
  } finally {
    await env.stop();
  }
});
