import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { hostMatches, hostsIntersect, normalizeHost, stringMatches } from "./match.ts";

Deno.test("normalizeHost() lower-cases and strips ports, brackets and a trailing dot", () => {
  const cases: [string, string][] = [
    ["Shop.Example.com:8080", "shop.example.com"],
    ["example.com.", "example.com"],
    ["[::1]:443", "::1"],
    ["10.0.0.1", "10.0.0.1"],
    ["", ""],
  ];
  for (const [input, want] of cases) assertEquals(normalizeHost(input), want, input);
});

Deno.test("hostMatches() handles exact names, '*' and '*.suffix' wildcards", () => {
  const cases: [string, string, boolean][] = [
    ["*", "anything.io", true],
    ["*", "", true],
    ["a.example.com", "a.example.com", true],
    ["A.Example.com", "a.example.com", true],
    ["a.example.com", "b.example.com", false],
    ["*.example.com", "a.example.com", true],
    ["*.example.com", "a.b.example.com", true],
    ["*.example.com", "example.com", false],
    ["*.example.com", "badexample.com", false],
  ];
  for (const [p, h, want] of cases) assertEquals(hostMatches(p, h), want, `${p} vs ${h}`);
});

Deno.test("hostsIntersect() says whether two patterns can match one host", () => {
  assertEquals(hostsIntersect("*", "a.b"), true);
  assertEquals(hostsIntersect("*.example.com", "shop.example.com"), true);
  assertEquals(hostsIntersect("shop.example.com", "*.example.com"), true);
  assertEquals(hostsIntersect("*.a.example.com", "*.example.com"), true);
  assertEquals(hostsIntersect("*.example.org", "*.example.com"), false);
  assertEquals(hostsIntersect("x.io", "y.io"), false);
});

Deno.test("stringMatches() applies exact, prefix and anchored regex; absent values never match", () => {
  assertEquals(stringMatches({ kind: "exact", value: "/a" }, "/a"), true);
  assertEquals(stringMatches({ kind: "exact", value: "/a" }, "/ab"), false);
  assertEquals(stringMatches({ kind: "prefix", value: "/a" }, "/ab"), true);
  assertEquals(stringMatches({ kind: "regex", value: /^(?:\/v[0-9]+)$/ }, "/v12"), true);
  assertEquals(stringMatches({ kind: "regex", value: /^(?:\/v[0-9]+)$/ }, "/v12/x"), false);
  assertEquals(stringMatches({ kind: "prefix", value: "" }, undefined), false);
});
