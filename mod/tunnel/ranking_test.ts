import { deepStrictEqual } from "node:assert/strict";
import { chooseRelays, type RelayCandidate, type RelayChoice } from "./ranking.ts";

const r = (node: string, rttMs: number | undefined, alive = true): RelayCandidate => ({
  node,
  rttMs,
  alive,
});

const cases: [string, RelayChoice, RelayCandidate[], RelayChoice][] = [
  ["first choice: nearest is primary, next is standby", {}, [
    r("far", 80),
    r("near", 5),
    r("mid", 20),
  ], {
    primary: "near",
    standby: "mid",
  }],
  ["unmeasured relays come last", {}, [r("x", undefined), r("y", 30)], {
    primary: "y",
    standby: "x",
  }],
  ["dead relays are never chosen", {}, [r("x", 1, false), r("y", 30)], {
    primary: "y",
    standby: undefined,
  }],
  ["keeps the primary when the other is only slightly better (9 ms)", {
    primary: "a",
    standby: "b",
  }, [
    r("a", 30),
    r("b", 21),
  ], { primary: "a", standby: "b" }],
  ["keeps the primary when 10 ms better but not under 2/3", { primary: "a", standby: "b" }, [
    r("a", 40),
    r("b", 30),
  ], {
    primary: "a",
    standby: "b",
  }],
  ["switches when ≥10 ms better and under 2/3", { primary: "a", standby: "b" }, [
    r("a", 40),
    r("b", 26),
  ], {
    primary: "b",
    standby: "a",
  }],
  ["promotes the standby at once when the primary dies", { primary: "a", standby: "b" }, [
    r("a", 5, false),
    r("b", 50),
    r("c", 10),
  ], { primary: "b", standby: "c" }],
  ["a returning relay becomes standby, not primary, without a clear gain", {
    primary: "b",
    standby: "c",
  }, [
    r("a", 9),
    r("b", 12),
    r("c", 15),
  ], { primary: "b", standby: "c" }],
  ["a new standby is picked when the standby dies", { primary: "a", standby: "b" }, [
    r("a", 5),
    r("b", 6, false),
    r("c", 60),
  ], { primary: "a", standby: "c" }],
  ["no relay alive: no choice", { primary: "a" }, [r("a", 5, false)], {
    primary: undefined,
    standby: undefined,
  }],
];

for (const [name, current, candidates, want] of cases) {
  Deno.test(`chooseRelays(): ${name}`, () => {
    deepStrictEqual(chooseRelays(current, candidates), want);
  });
}
