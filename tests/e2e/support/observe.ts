/**
 * Looking at agents and services from the outside in scenarios: metrics, relay views,
 * reservations, a curl loop until a service answers, and the b1 web service several use.
 */

import { equal } from "node:assert/strict";
import { waitFor } from "../../support/wait.ts";
import type { Topology } from "../topology.ts";
import type { NsAgent, Obj } from "./agent.ts";
import { curl } from "./client.ts";
import { serviceObjects } from "./cluster.ts";

/** Sum of a metric's samples whose labels contain every `labels` pair. */
export function metricSum(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) {
      continue;
    }
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** The agent's `/metrics` text. */
export async function metrics(agent: NsAgent): Promise<string> {
  const r = await agent.admin("/metrics");
  equal(r.status, 200, `metrics of ${agent.node}: ${r.stderr}`);
  return r.body;
}

/** `status.relays[]` by relay name. */
export async function relayView(agent: NsAgent): Promise<Map<string, Obj>> {
  return new Map((await agent.status()).relays.map((r: Obj) => [r.node, r]));
}

/** Waits until every agent holds a reservation on each of `relays`. */
export async function waitReserved(
  agents: NsAgent[],
  relays: string[],
  timeoutMs = 15_000,
): Promise<void> {
  await Promise.all(agents.map((a) =>
    waitFor(async () => {
      const v = await relayView(a);
      return relays.every((r) => v.get(r)?.reserved === true);
    }, {
      what: `${a.node} reserved on ${relays.join(", ")}`,
      timeoutMs,
      intervalMs: 100,
    })
  ));
}

/**
 * Polls `curl URL` from `from` until the body is `body`; returns the attempts it took and the
 * time to the first good answer.
 */
export async function untilServes(
  topo: Topology,
  from: string,
  url: string,
  body: string,
  timeoutMs = 20_000,
): Promise<{ attempts: number; ms: number }> {
  const t0 = performance.now();
  let attempts = 0;
  await waitFor(async () => {
    attempts++;
    return (await curl(topo, from, url, { maxTimeS: 3 })).body === body;
  }, {
    what: `${from}: curl ${url} answers "${body}"`,
    timeoutMs,
    intervalMs: 200,
  });
  return { attempts, ms: performance.now() - t0 };
}

/** The service `demo/web` with one endpoint on b1 (HTTP 8080, and UDP echo 7007 with `udp`). */
export function webOnB1(topo: Topology, clusterIP: string, udp = false): Obj[] {
  return serviceObjects({
    namespace: "demo",
    name: "web",
    clusterIP,
    ports: [
      { name: "http", port: 80, targetPort: 8080 },
      ...(udp ? [{ name: "echo", port: 7, targetPort: 7007, protocol: "UDP" as const }] : []),
    ],
    endpoints: [{ node: "b1", ip: topo.ip("b1") }],
  });
}
