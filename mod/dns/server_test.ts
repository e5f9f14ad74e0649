/**
 * The DNS server against real `dig`: cluster names in every form, negative answers, the
 * forwarder and its cache, upstream failure, TCP, truncation, live catalog changes.
 */

import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { Registry } from "../metrics/mod.ts";
import { nullLogger } from "../log/mod.ts";
import type { ServiceCatalog } from "../kube/mod.ts";
import { batchedPathAvailable, DnsBindError, type DnsOptions, DnsServer } from "./mod.ts";
import type { DnsDeps } from "./server.ts";
import { reverseName } from "./zone.ts";
import {
  closedUdpPort,
  dig,
  encodeQuery,
  fakeHealth,
  FakeUpstream,
  NS,
  readTcpAnswers,
  rejectsWith,
  sampleCluster,
  service,
  slice,
} from "./test_support.ts";

const LONG = `hostname-lb-svc.${NS}.svc.cluster.local`;

const UDP_PATHS = ["portable", "batched"] as const;
type UdpPathChoice = typeof UDP_PATHS[number];

async function withServerOn(
  udpPath: UdpPathChoice,
  deps: Partial<DnsDeps> & { catalog: ServiceCatalog },
  options: Partial<DnsOptions>,
  fn: (s: DnsServer) => Promise<void>,
): Promise<void> {
  const s = new DnsServer({ logger: nullLogger(), metrics: new Registry(), ...deps }, {
    listenAddresses: ["127.0.0.1"],
    listenPort: 0,
    clusterDomain: "cluster.local",
    ttlMs: 30_000,
    upstreamServers: [],
    upstreamTimeoutMs: 400,
    upstreamAttemptTimeoutMs: 200,
    udpPath,
    ...options,
  });
  await s.start(new AbortController().signal);
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

/** One conformance suite for both UDP receive paths. */
function suite(udpPath: UdpPathChoice): void {
  const withServer = (
    deps: Partial<DnsDeps> & { catalog: ServiceCatalog },
    options: Partial<DnsOptions>,
    fn: (s: DnsServer) => Promise<void>,
  ) => withServerOn(udpPath, deps, options, fn);

  Deno.test(`dig gets the ClusterIP for the long name and the short forms <svc>.<ns> and <svc>.<ns>.svc [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    await withServer({ catalog }, {}, async (s) => {
      for (
        const name of [
          LONG,
          `hostname-lb-svc.${NS}`,
          `hostname-lb-svc.${NS}.svc`,
          LONG.toUpperCase(),
        ]
      ) {
        const r = await dig(s.port, name, "A");
        assertEquals(r.status, "NOERROR", name);
        assert(r.flags.includes("aa"), `${name}: authoritative`);
        assertEquals(
          r.answer.map((a) => [a.type, a.data, a.ttl]),
          [["A", "198.19.0.10", 30]],
          name,
        );
        assertEquals(r.answer[0].name.toLowerCase(), name.toLowerCase() + ".");
      }
    });
  });

  Deno.test(`an unknown name in the zone is NXDOMAIN and a missing type NODATA, both with the SOA [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    await withServer({ catalog }, { ttlMs: 7_000 }, async (s) => {
      const nx = await dig(s.port, `nope.${NS}.svc.cluster.local`, "A");
      assertEquals(nx.status, "NXDOMAIN");
      assert(nx.flags.includes("aa"));
      assertEquals(nx.answer, []);
      assertEquals(nx.authority.map((a) => [a.name, a.type, a.ttl]), [[
        "cluster.local.",
        "SOA",
        7,
      ]]);
      const nodata = await dig(s.port, LONG, "AAAA");
      assertEquals(nodata.status, "NOERROR");
      assertEquals(nodata.answer, []);
      assertEquals(nodata.authority.map((a) => a.type), ["SOA"]);
      // Empty non-terminals (namespace, svc) exist: NODATA, not NXDOMAIN.
      assertEquals((await dig(s.port, `${NS}.svc.cluster.local`, "A")).status, "NOERROR");
      assertEquals((await dig(s.port, `nons.svc.cluster.local`, "A")).status, "NXDOMAIN");
      // A headless service without endpoints exists: NODATA.
      const empty = await dig(s.port, `empty-hl.${NS}.svc.cluster.local`, "A");
      assertEquals([empty.status, empty.answer.length], ["NOERROR", 0]);
    });
  });

  Deno.test(`several listen addresses share one port, UDP and TCP on each [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    await withServer({ catalog }, { listenAddresses: ["127.0.0.1", "127.0.0.2"] }, async (s) => {
      assertEquals(s.details().listeners.map((l) => l.address), [
        `127.0.0.1:${s.port}`,
        `127.0.0.2:${s.port}`,
      ]);
      for (const server of ["127.0.0.1", "127.0.0.2"]) {
        for (const extra of [[], ["+tcp"]]) {
          const r = await dig(s.port, LONG, "A", extra, server);
          assertEquals(r.answer[0]?.data, "198.19.0.10", `${server} ${extra}`);
        }
      }
    });
  });

  Deno.test(`dual-stack services answer A and AAAA [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    await withServer({ catalog }, {}, async (s) => {
      const a = await dig(s.port, `dual.${NS}.svc.cluster.local`, "A");
      const aaaa = await dig(s.port, `dual.${NS}`, "AAAA");
      assertEquals(a.answer.map((r) => r.data), ["198.19.0.11"]);
      assertEquals(aaaa.answer.map((r) => r.data), ["fd00::11"]);
    });
  });

  Deno.test(`a headless service lists only served endpoints, and endpoint hostnames resolve [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    const health = fakeHealth({ bad: "unhealthy" });
    await withServer({ catalog, health }, {}, async (s) => {
      const r = await dig(s.port, `hl.${NS}.svc.cluster.local`, "A");
      assertEquals(r.answer.map((a) => a.data).sort(), ["198.18.1.1", "198.18.1.2"]);
      const host = await dig(s.port, `web-1.hl.${NS}.svc.cluster.local`, "A");
      assertEquals(host.answer.map((a) => a.data), ["198.18.1.2"]);
      // Not ready, and on an unhealthy node: not served.
      assertEquals((await dig(s.port, `web-2.hl.${NS}.svc.cluster.local`, "A")).status, "NXDOMAIN");
      // The health verdict changes: the endpoint on "bad" comes back at once (named by its IP).
      health.set("bad", "healthy");
      const after = await dig(s.port, `hl.${NS}`, "A");
      assertEquals(after.answer.map((a) => a.data).sort(), [
        "198.18.1.1",
        "198.18.1.2",
        "198.18.1.4",
      ]);
      assertEquals(
        (await dig(s.port, `198-18-1-4.hl.${NS}.svc.cluster.local`, "A")).answer[0]?.data,
        "198.18.1.4",
      );
    });
  });

  Deno.test(`SRV answers named ports with targets and their addresses [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    await withServer({ catalog, health: fakeHealth({ bad: "unhealthy" }) }, {}, async (s) => {
      const svc = await dig(s.port, `_http-0._tcp.${LONG}`, "SRV");
      assertEquals(svc.status, "NOERROR");
      assertEquals(svc.answer.map((a) => a.data), [`0 100 12345 ${LONG}.`]);
      assertEquals(svc.additional.map((a) => [a.name, a.data]), [[`${LONG}.`, "198.19.0.10"]]);
      const hl = await dig(s.port, `_web._tcp.hl.${NS}.svc.cluster.local`, "SRV");
      assertEquals(hl.answer.map((a) => a.data).sort(), [
        `0 50 8080 web-0.hl.${NS}.svc.cluster.local.`,
        `0 50 8080 web-1.hl.${NS}.svc.cluster.local.`,
      ]);
      assertEquals(hl.additional.map((a) => a.data).sort(), ["198.18.1.1", "198.18.1.2"]);
      // Wrong protocol or port name: NXDOMAIN; the _tcp level exists: NODATA.
      assertEquals((await dig(s.port, `_http-0._udp.${LONG}`, "SRV")).status, "NXDOMAIN");
      assertEquals((await dig(s.port, `_nope._tcp.${LONG}`, "SRV")).status, "NXDOMAIN");
      assertEquals((await dig(s.port, `_tcp.${LONG}`, "SRV")).status, "NOERROR");
    });
  });

  Deno.test(`PTR answers ClusterIPs and endpoint IPs; unknown reverse names are forwarded [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    const up = new FakeUpstream({ records: {} });
    try {
      await withServer({ catalog }, { upstreamServers: [up.address] }, async (s) => {
        const c = await dig(s.port, reverseName("198.19.0.10")!, "PTR");
        assertEquals(c.answer.map((a) => a.data), [`${LONG}.`]);
        assert(c.flags.includes("aa"));
        const e = await dig(s.port, reverseName("198.18.1.1")!, "PTR");
        assertEquals(e.answer.map((a) => a.data), [`web-0.hl.${NS}.svc.cluster.local.`]);
        const v6 = await dig(s.port, reverseName("fd00::11")!, "PTR");
        assertEquals(v6.answer.map((a) => a.data), [`dual.${NS}.svc.cluster.local.`]);
        const other = await dig(s.port, reverseName("192.0.2.9")!, "PTR");
        assertEquals(other.status, "NXDOMAIN");
        assertEquals(up.queries.map((q) => q.name), ["9.2.0.192.in-addr.arpa"]);
      });
    } finally {
      await up.close();
    }
  });

  Deno.test(`an ExternalName service answers a CNAME, followed to the target's addresses [udp ${udpPath}]`, async () => {
    const { store, catalog } = sampleCluster();
    store.upsert(
      "services",
      service("alias-in", {
        type: "ExternalName",
        externalName: `hostname-lb-svc.${NS}.svc.cluster.local`,
      }),
    );
    const up = new FakeUpstream({
      records: { "example.org": [{ name: "example.org", type: "A", ttl: 50, data: "192.0.2.80" }] },
    });
    try {
      await withServer({ catalog }, { upstreamServers: [up.address] }, async (s) => {
        const r = await dig(s.port, `ext.${NS}.svc.cluster.local`, "CNAME");
        assertEquals(r.answer.map((a) => [a.type, a.data]), [["CNAME", "example.org."]]);
        assert(r.flags.includes("aa"));
        const a = await dig(s.port, `ext.${NS}`, "A");
        assertEquals(a.answer.map((x) => [x.name, x.type, x.data]), [
          [`ext.${NS}.`, "CNAME", "example.org."],
          ["example.org.", "A", "192.0.2.80"],
        ]);
        const inCluster = await dig(s.port, `alias-in.${NS}.svc.cluster.local`, "A");
        assertEquals(inCluster.answer.map((x) => x.data), [`${LONG}.`, "198.19.0.10"]);
        // The target exists but has no AAAA: the CNAME and the target's SOA.
        const none = await dig(s.port, `ext.${NS}.svc.cluster.local`, "AAAA");
        assertEquals([none.status, none.answer.length], ["NOERROR", 1]);
      });
    } finally {
      await up.close();
    }
  });

  Deno.test(`pod names answer the dashed IP; with a pod lookup only existing pods [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    await withServer({ catalog }, {}, async (s) => {
      assertEquals(
        (await dig(s.port, "10-1-2-3.default.pod.cluster.local", "A")).answer[0]?.data,
        "10.1.2.3",
      );
      assertEquals(
        (await dig(s.port, "fd00--5.default.pod.cluster.local", "AAAA")).answer[0]?.data,
        "fd00::5",
      );
      assertEquals((await dig(s.port, "10-1-2-3.default.pod.cluster.local", "AAAA")).answer, []);
      assertEquals(
        (await dig(s.port, "not-an-ip.default.pod.cluster.local", "A")).status,
        "NXDOMAIN",
      );
    });
    const pods = {
      podsByIP: (ns: string, ip: string) =>
        ns === "default" && ip === "10.1.2.3" ? [{ name: "p" }] : [],
    };
    await withServer({ catalog, pods }, {}, async (s) => {
      assertEquals(
        (await dig(s.port, "10-1-2-3.default.pod.cluster.local", "A")).status,
        "NOERROR",
      );
      assertEquals(
        (await dig(s.port, "10-1-2-4.default.pod.cluster.local", "A")).status,
        "NXDOMAIN",
      );
    });
  });

  Deno.test(`other names go to the upstream once and then come from the cache, positive and negative [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    const up = new FakeUpstream({
      records: {
        "www.example.org": [{ name: "www.example.org", type: "A", ttl: 100, data: "192.0.2.7" }],
      },
    });
    try {
      await withServer({ catalog }, { upstreamServers: [up.address] }, async (s) => {
        for (let i = 0; i < 3; i++) {
          const r = await dig(s.port, "www.example.org", "A");
          assertEquals(r.status, "NOERROR");
          assertEquals(r.answer.map((a) => a.data), ["192.0.2.7"]);
          assert(!r.flags.includes("aa"));
          assert(r.answer[0].ttl < 101);
          const n = await dig(s.port, "missing.example.org", "A");
          assertEquals(n.status, "NXDOMAIN");
          assertEquals(n.authority.map((a) => a.type), ["SOA"]);
        }
        assertEquals(up.queries.map((q) => q.name), ["www.example.org", "missing.example.org"]);
        // The client's letter case is echoed from the cache.
        const mixed = await dig(s.port, "WWW.Example.ORG", "A");
        assert(mixed.raw.includes(";WWW.Example.ORG."), mixed.raw);
        assertEquals(up.queries.length, 2);
        assertEquals(s.details().cacheEntries, 2);
      });
    } finally {
      await up.close();
    }
  });

  Deno.test(`with the upstream down the answer is SERVFAIL within the deadline and cluster names still work [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    const port = closedUdpPort();
    await withServer(
      { catalog },
      { upstreamServers: [`127.0.0.1:${port}`], upstreamTimeoutMs: 300 },
      async (s) => {
        const r = await dig(s.port, "www.example.org", "A");
        assertEquals(r.status, "SERVFAIL");
        assert(r.ms < 1500);
        assertEquals((await dig(s.port, LONG, "A")).status, "NOERROR");
        for (let i = 0; i < 2; i++) {
          assertEquals((await dig(s.port, `w${i}.example.org`, "A")).status, "SERVFAIL");
        }
        assertEquals(s.status().state, "degraded");
        assertMatch(s.status().detail, /every upstream is failing/);
        const st = s.details().upstreams[0];
        assert(st.failures > 0);
        assertMatch(st.lastError ?? "", /no answer within/);
      },
    );
  });

  Deno.test(`a dead first upstream fails over to the second, which then stays preferred [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    const up = new FakeUpstream({
      records: { "a.example": [{ name: "a.example", type: "A", ttl: 5, data: "192.0.2.1" }] },
    });
    const dead = `127.0.0.1:${closedUdpPort()}`;
    try {
      await withServer({ catalog }, {
        upstreamServers: [dead, up.address],
        upstreamAttemptTimeoutMs: 150,
      }, async (s) => {
        assertEquals((await dig(s.port, "a.example", "A")).answer[0]?.data, "192.0.2.1");
        const st = s.details().upstreams;
        assertEquals(st.map((u) => u.preferred), [false, true]);
        const deadQueries = st[0].queries;
        assertEquals((await dig(s.port, "b.example", "A")).status, "NXDOMAIN");
        assertEquals(
          s.details().upstreams[0].queries,
          deadQueries,
          "the preferred upstream is asked first",
        );
      });
    } finally {
      await up.close();
    }
  });

  Deno.test(`TCP: dig +tcp, and several pipelined queries on one connection [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    await withServer({ catalog }, {}, async (s) => {
      const r = await dig(s.port, LONG, "A", ["+tcp"]);
      assertEquals([r.status, r.transport, r.answer[0]?.data], ["NOERROR", "TCP", "198.19.0.10"]);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      try {
        const names = [LONG, `hl.${NS}`, `nope.${NS}.svc.cluster.local`];
        const framed = names.map((n, i) =>
          encodeQuery({ id: 100 + i, name: n, type: "A", tcp: true })
        );
        await conn.write(new Uint8Array(framed.flatMap((f) => [...f])));
        const answers = await readTcpAnswers(conn, names.length);
        assertEquals(answers.map((a) => [a.id, (a as { rcode?: string }).rcode]).sort(), [
          [100, "NOERROR"],
          [101, "NOERROR"],
          [102, "NXDOMAIN"],
        ]);
      } finally {
        conn.close();
      }
    });
  });

  Deno.test(`a large answer is truncated over UDP and dig retries over TCP; a truncating upstream is re-asked over TCP [udp ${udpPath}]`, async () => {
    const { store, catalog } = sampleCluster();
    const eps = Array.from({ length: 120 }, (_, i) => ({
      addresses: [`198.18.${2 + (i >> 8)}.${i & 0xff}`],
      conditions: { ready: true },
    }));
    store.upsert("services", service("big", { clusterIP: "None" }));
    store.upsert("endpointslices", slice("big", eps, []));
    store.upsert("services", service("mid", { clusterIP: "None" }));
    store.upsert("endpointslices", slice("mid", eps.slice(0, 40), []));
    const txt = "x".repeat(200);
    const up = new FakeUpstream({
      records: {
        "big.example": Array.from(
          { length: 10 },
          () => ({ name: "big.example", type: "TXT" as const, ttl: 60, data: txt }),
        ),
      },
      truncateUdp: new Set(["big.example"]),
    });
    try {
      await withServer({ catalog }, { upstreamServers: [up.address] }, async (s) => {
        const r = await dig(s.port, `big.${NS}.svc.cluster.local`, "A");
        assert(r.raw.includes("Truncated, retrying in TCP mode"), r.raw);
        assertEquals([r.transport, r.answer.length], ["TCP", 120]);
        // 40 endpoints (~700 bytes): over 512 without EDNS, within an EDNS 1232 limit.
        const mid = await dig(s.port, `mid.${NS}.svc.cluster.local`, "A", ["+ignore", "+noedns"]);
        assert(mid.flags.includes("tc"), "truncated at 512 without EDNS");
        const midEdns = await dig(s.port, `mid.${NS}.svc.cluster.local`, "A", [
          "+ignore",
          "+bufsize=1232",
        ]);
        assertEquals([midEdns.flags.includes("tc"), midEdns.answer.length, midEdns.transport], [
          false,
          40,
          "UDP",
        ]);
        const ignore = await dig(s.port, `big.${NS}.svc.cluster.local`, "A", [
          "+ignore",
          "+bufsize=1232",
        ]);
        assert(ignore.flags.includes("tc"));
        assertEquals(ignore.answer.length, 0);
        const t = await dig(s.port, "big.example", "TXT");
        assertEquals(t.answer.length, 10);
        assertEquals(up.queries.map((q) => q.transport), ["udp", "tcp"]);
      });
    } finally {
      await up.close();
    }
  });

  Deno.test(`answers change as soon as the catalog changes [udp ${udpPath}]`, async () => {
    const { store, catalog } = sampleCluster();
    await withServer({ catalog }, {}, async (s) => {
      const name = `new-svc.${NS}.svc.cluster.local`;
      assertEquals((await dig(s.port, name, "A")).status, "NXDOMAIN");
      store.upsert(
        "services",
        service("new-svc", { clusterIP: "198.19.0.99", ports: [{ port: 80 }] }),
      );
      assertEquals((await dig(s.port, name, "A")).answer[0]?.data, "198.19.0.99");
      store.upsert(
        "services",
        service("new-svc", { clusterIP: "198.19.0.98", ports: [{ port: 80 }] }),
      );
      assertEquals((await dig(s.port, `new-svc.${NS}`, "A")).answer[0]?.data, "198.19.0.98");
      store.delete("services", NS, "new-svc");
      assertEquals((await dig(s.port, name, "A")).status, "NXDOMAIN");
    });
  });

  Deno.test(`EDNS: the OPT is answered with our payload size; an unknown EDNS version gets BADVERS [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    await withServer({ catalog }, {}, async (s) => {
      const r = await dig(s.port, LONG, "A", ["+bufsize=4096"]);
      assertMatch(r.raw, /EDNS: version: 0, flags:; udp: 1232/);
      const bad = await dig(s.port, LONG, "A", ["+edns=1", "+noednsnegotiation"]);
      assertEquals(bad.status, "BADVERS");
    });
  });

  Deno.test(`a listener that cannot bind fails start with a clear DnsBindError [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    await withServer({ catalog }, {}, async (first) => {
      const s = new DnsServer({ logger: nullLogger(), metrics: new Registry(), catalog }, {
        listenAddresses: ["127.0.0.1"],
        listenPort: first.port,
        clusterDomain: "cluster.local",
        ttlMs: 30_000,
        upstreamServers: [],
        udpPath,
      });
      const err = await rejectsWith(() => s.start(new AbortController().signal), DnsBindError);
      assertEquals(
        err.message,
        // The batched path's UDP socket has SO_REUSEPORT: there the TCP bind is the one that fails.
        `Cannot bind DNS listener on "127.0.0.1:${first.port}" (${
          udpPath === "batched" ? "tcp" : "udp"
        }): address already in use`,
      );
      assertEquals(s.status().state, "failed");
      await s.stop();
    });
    const s = new DnsServer({ logger: nullLogger(), metrics: new Registry(), catalog }, {
      listenAddresses: ["198.18.250.1"],
      listenPort: 0,
      clusterDomain: "cluster.local",
      ttlMs: 30_000,
      upstreamServers: [],
      udpPath,
    });
    const err = await rejectsWith(() => s.start(new AbortController().signal), DnsBindError);
    assertMatch(
      err.message,
      /^Cannot bind DNS listener on "198\.18\.250\.1:0" \(udp\): address not available/,
    );
  });

  Deno.test(`stop() is idempotent and safe before start; status and metrics describe the server [udp ${udpPath}]`, async () => {
    const { catalog } = sampleCluster();
    const metrics = new Registry();
    const s = new DnsServer({ logger: nullLogger(), metrics, catalog }, {
      listenAddresses: ["127.0.0.1"],
      listenPort: 0,
      clusterDomain: "cluster.local",
      ttlMs: 30_000,
      upstreamServers: ["127.0.0.1:1"],
      udpPath,
    });
    await s.stop();
    assertEquals(s.status().state, "stopped");
    await s.start(new AbortController().signal);
    assertEquals(s.status().state, "ready");
    assertMatch(s.status().detail, new RegExp(`udp ${udpPath}, tcp`));
    const d = s.details();
    assertEquals([d.udpPath, d.listeners.length, d.upstreams[0].address], [
      udpPath,
      1,
      "127.0.0.1:1",
    ]);
    await dig(s.port, LONG, "A");
    await dig(s.port, `x.${NS}.svc.cluster.local`, "AAAA");
    await Promise.all([s.stop(), s.stop()]);
    assertEquals(s.status().state, "stopped");
    const text = metrics.render();
    assertMatch(
      text,
      /edgemesh_dns_queries_total\{qtype="A",rcode="NOERROR",source="cluster",protocol="udp"\} 1/,
    );
    assertMatch(
      text,
      /edgemesh_dns_queries_total\{qtype="AAAA",rcode="NXDOMAIN",source="cluster",protocol="udp"\} 1/,
    );
    assertMatch(text, /edgemesh_dns_request_duration_seconds_count\{source="cluster"\} 2/);
  });
}

for (const udpPath of UDP_PATHS) suite(udpPath);

Deno.test("udpPath auto takes the batched path when FFI is granted, and says so", async () => {
  const { catalog } = sampleCluster();
  const s = new DnsServer({ logger: nullLogger(), metrics: new Registry(), catalog }, {
    listenAddresses: ["127.0.0.1"],
    listenPort: 0,
    clusterDomain: "cluster.local",
    ttlMs: 30_000,
    upstreamServers: [],
  });
  await s.start(new AbortController().signal);
  try {
    assertEquals(s.details().udpPath, batchedPathAvailable() ? "batched" : "portable");
    assertEquals((await dig(s.port, LONG, "A")).answer[0]?.data, "198.19.0.10");
  } finally {
    await s.stop();
  }
});
