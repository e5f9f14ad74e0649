/**
 * A relay agent in its own process, for tests that kill it (SIGKILL) or measure its memory.
 * Usage: deno run -A --v8-flags=--expose-gc relay_main.ts '<json: {name, ip, known[], stateDir}>'
 * Prints `READY <multiaddr>` once listening; answers each stdin line "mem" with
 * `MEM <rss> <external>` (bytes, after a forced GC and a trim of the native heap: the state
 * the agent's MemoryTrimmer reaches within one interval).
 */
import { nullLogger } from "../../log/mod.ts";
import { MemoryTrimmer } from "../../memory/mod.ts";
import { Registry } from "../../metrics/mod.ts";
import { Tunnel } from "../tunnel.ts";

if (import.meta.main) {
  const spec = JSON.parse(Deno.args[0]) as {
    name: string;
    ip: string;
    known: string[];
    stateDir: string;
  };
  const tunnel = new Tunnel({
    logger: nullLogger(),
    metrics: new Registry(),
    localTargets: { allowed: () => false },
  }, {
    nodeName: spec.name,
    listenAddresses: [spec.ip],
    listenPort: 0,
    stateDir: spec.stateDir,
    rendezvous: "test",
    relayNodes: [{ nodeName: spec.name, advertiseAddress: [] }],
    bootstrapPeers: [],
    mdns: false,
    enableHolePunch: false,
    heartbeatPeriodMs: 60_000,
    finderPeriodMs: 60_000,
    maxCandidates: 15,
    knownNodes: () => new Set(spec.known),
  });
  await tunnel.start(AbortSignal.timeout(10_000));
  const trimmer = new MemoryTrimmer({ logger: nullLogger(), metrics: new Registry() });
  await trimmer.start(AbortSignal.timeout(1000));
  const out = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\n"));
  out(`READY ${tunnel.multiaddrs()[0]}`);
  const gc = (globalThis as { gc?: () => void }).gc;
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    if (chunk.includes("mem")) {
      gc?.();
      await trimmer.trim();
      const m = Deno.memoryUsage();
      out(`MEM ${m.rss} ${m.external}`);
    }
  }
  await trimmer.stop();
  await tunnel.stop();
}
