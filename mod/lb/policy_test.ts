import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { DestinationRule } from "../kube/types.ts";
import { InvalidDestinationRuleError } from "./errors.ts";
import { parseDestinationRule, parseDurationMs, policyForPort } from "./policy.ts";

function dr(spec: unknown): DestinationRule {
  return { metadata: { name: "web", namespace: "default" }, spec: spec as DestinationRule["spec"] };
}

Deno.test("parseDestinationRule() reads simple and hash policies with port-level overrides", () => {
  const rule = parseDestinationRule(dr({
    host: "web",
    trafficPolicy: {
      loadBalancer: { simple: "RANDOM" },
      portLevelSettings: [
        { port: { number: 8080 }, loadBalancer: { consistentHash: { httpHeaderName: "X-User" } } },
        {
          port: { number: 9090 },
          loadBalancer: { consistentHash: { httpCookie: { name: "sid", ttl: "1h" } } },
        },
        { port: { number: 53 }, loadBalancer: { consistentHash: { useSourceIp: true } } },
        { port: { number: 81 }, loadBalancer: { simple: "LEAST_CONN" } },
      ],
    },
  }));
  assertEquals(policyForPort(rule, 80), { kind: "simple", simple: "RANDOM" });
  assertEquals(policyForPort(rule, 8080), {
    kind: "hash",
    key: { kind: "header", name: "x-user" },
  });
  assertEquals(policyForPort(rule, 9090), {
    kind: "hash",
    key: { kind: "cookie", name: "sid", path: "/", ttlMs: 3_600_000 },
  });
  assertEquals(policyForPort(rule, 53), { kind: "hash", key: { kind: "sourceIp" } });
  assertEquals(policyForPort(rule, 81), { kind: "simple", simple: "LEAST_REQUEST" });
  assertEquals(policyForPort(undefined, 80), { kind: "simple", simple: "ROUND_ROBIN" });
});

Deno.test("parseDestinationRule() rejects a malformed rule listing every problem", () => {
  let err: unknown;
  try {
    parseDestinationRule(dr({
      trafficPolicy: {
        loadBalancer: { simple: "FASTEST" },
        portLevelSettings: [
          { port: { number: "x" } },
          {
            port: { number: 80 },
            loadBalancer: { consistentHash: { httpCookie: { name: "a", ttl: "soon" } } },
          },
          { port: { number: 81 }, loadBalancer: { consistentHash: {} } },
        ],
      },
    }));
  } catch (e) {
    err = e;
  }
  assert(err instanceof InvalidDestinationRuleError);
  assertEquals(err.problems.length, 5);
  assertEquals(err.problems[0], 'spec.trafficPolicy.loadBalancer.simple: unknown policy "FASTEST"');
});

Deno.test("parseDurationMs() reads protobuf durations", () => {
  assertEquals(parseDurationMs("10s"), 10_000);
  assertEquals(parseDurationMs("1.5s"), 1500);
  assertEquals(parseDurationMs("2m"), 120_000);
  assertEquals(parseDurationMs("0s"), 0);
  assertEquals(parseDurationMs("10"), undefined);
  assertEquals(parseDurationMs(10), undefined);
});
