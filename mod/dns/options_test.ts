import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { DnsOptionsError } from "./errors.ts";
import { parseUpstream, resolveDnsOptions, upstreamsFromResolvConf } from "./options.ts";

Deno.test("parseUpstream accepts ip, ip:port and [ipv6]:port and rejects the rest", () => {
  const cases: [string, string | undefined][] = [
    ["10.0.0.1", "10.0.0.1:53"],
    ["10.0.0.1:5353", "10.0.0.1:5353"],
    ["fd00::1", "[fd00::1]:53"],
    ["[fd00::1]:54", "[fd00::1]:54"],
    ["::ffff:10.0.0.1", "[::ffff:10.0.0.1]:53"],
    ["example.org", undefined],
    ["10.0.0.1:0", undefined],
    ["10.0.0.256", undefined],
    ["1::2::3", undefined],
  ];
  for (const [text, label] of cases) assertEquals(parseUpstream(text)?.label, label, text);
});

Deno.test("resolveDnsOptions fills defaults and lists every problem with its field", () => {
  const o = resolveDnsOptions({
    listenAddresses: ["127.0.0.1"],
    listenPort: 53,
    clusterDomain: "Cluster.Local.",
    ttlMs: 30_500,
    upstreamServers: ["1.1.1.1"],
  });
  assertEquals([o.domain, o.ttlSeconds, o.cacheEntries, o.upstreams[0].label], [
    "cluster.local",
    30,
    10_000,
    "1.1.1.1:53",
  ]);
  throws(
    () =>
      resolveDnsOptions({
        listenAddresses: ["nope"],
        listenPort: 70000,
        clusterDomain: "bad_domain!",
        ttlMs: -1,
        upstreamServers: ["x"],
        maxUdpPayload: 100,
      }),
    (err: unknown) => {
      const p = (err as DnsOptionsError).problems;
      assertEquals(p.map((x) => x.split(":")[0]), [
        "listenAddresses[0]",
        "listenPort",
        "clusterDomain",
        "ttlMs",
        "upstreamServers[0]",
        "maxUdpPayload",
      ]);
      return err instanceof DnsOptionsError;
    },
  );
});

Deno.test("upstreamsFromResolvConf lists nameservers except our own addresses", () => {
  const text = "# generated\nsearch example\nnameserver 169.254.96.16\nnameserver 10.0.0.2\n" +
    "nameserver fe80::1%eth0\nnameserver 10.0.0.2\noptions ndots:5\n";
  assertEquals(upstreamsFromResolvConf(text, ["169.254.96.16"]), ["10.0.0.2", "fe80::1"]);
});
