/**
 * Test fixtures for the DNS module: a cluster store with sample services, a fake upstream DNS
 * server on 127.0.0.1 (UDP and TCP, port 0) and a `dig` runner with a parsed result.
 * Not part of the public face.
 */

import packet from "dns-packet";
import { Buffer } from "node:buffer";
import { ClusterStore, type EndpointSlice, type Service, StoreCatalog } from "../kube/mod.ts";
import type { HealthView, Verdict } from "../contracts/mod.ts";

export const NS = "edgemesh-test";

export function service(name: string, spec: Service["spec"], namespace = NS): Service {
  return { metadata: { name, namespace }, spec };
}

export function slice(
  svc: string,
  endpoints: NonNullable<EndpointSlice["endpoints"]>,
  ports: EndpointSlice["ports"],
  opts: { namespace?: string; name?: string; addressType?: EndpointSlice["addressType"] } = {},
): EndpointSlice {
  return {
    metadata: {
      name: opts.name ?? `${svc}-abc`,
      namespace: opts.namespace ?? NS,
      labels: { "kubernetes.io/service-name": svc },
    },
    addressType: opts.addressType ?? "IPv4",
    endpoints,
    ports,
  };
}

/** The sample cluster used by the DNS tests. */
export function sampleCluster(): { store: ClusterStore; catalog: StoreCatalog } {
  const store = new ClusterStore();
  const catalog = new StoreCatalog(store);
  store.batch(() => {
    store.upsert(
      "services",
      service("hostname-lb-svc", {
        clusterIP: "198.19.0.10",
        ports: [{ name: "http-0", port: 12345, protocol: "TCP", targetPort: 9376 }],
      }),
    );
    store.upsert(
      "endpointslices",
      slice("hostname-lb-svc", [
        { addresses: ["198.18.0.21"], conditions: { ready: true }, nodeName: "n1" },
        { addresses: ["198.18.0.22"], conditions: { ready: true }, nodeName: "n2" },
      ], [{ name: "http-0", port: 9376, protocol: "TCP" }]),
    );
    store.upsert(
      "services",
      service("hl", { clusterIP: "None", ports: [{ name: "web", port: 80, protocol: "TCP" }] }),
    );
    store.upsert(
      "endpointslices",
      slice("hl", [
        {
          addresses: ["198.18.1.1"],
          hostname: "web-0",
          conditions: { ready: true },
          nodeName: "n1",
        },
        {
          addresses: ["198.18.1.2"],
          hostname: "web-1",
          conditions: { ready: true },
          nodeName: "n2",
        },
        {
          addresses: ["198.18.1.3"],
          hostname: "web-2",
          conditions: { ready: false },
          nodeName: "n1",
        },
        { addresses: ["198.18.1.4"], conditions: { ready: true }, nodeName: "bad" },
      ], [{ name: "web", port: 8080, protocol: "TCP" }]),
    );
    store.upsert(
      "services",
      service("dual", {
        clusterIPs: ["198.19.0.11", "fd00::11"],
        ports: [{ port: 53, protocol: "UDP" }],
      }),
    );
    store.upsert("services", service("ext", { type: "ExternalName", externalName: "example.org" }));
    store.upsert(
      "services",
      service("empty-hl", { clusterIP: "None", ports: [{ name: "x", port: 1 }] }),
    );
  });
  return { store, catalog };
}

/** A health view with fixed verdicts and a way to change them. */
export function fakeHealth(
  verdicts: Record<string, Verdict>,
): HealthView & { set(node: string, v: Verdict): void } {
  const listeners = new Set<(node: string, v: Verdict) => void>();
  return {
    verdict: (n) => verdicts[n] ?? "unknown",
    onChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    set(node, v) {
      verdicts[node] = v;
      for (const l of listeners) l(node, v);
    },
  };
}

export interface FakeUpstreamOptions {
  /** Answers by lower-case name; missing names get NXDOMAIN with an SOA. */
  records: Record<string, packet.Answer[]>;
  /** Names answered over UDP with TC set and no records (full answer over TCP). */
  truncateUdp?: Set<string>;
}

/** A tiny authoritative server for tests; counts queries by transport. */
export class FakeUpstream {
  readonly udp: Deno.DatagramConn;
  readonly tcp: Deno.TcpListener;
  readonly port: number;
  queries: { name: string; type: string; transport: "udp" | "tcp" }[] = [];
  #loops: Promise<void>[] = [];
  #conns = new Set<Deno.Conn>();

  constructor(private readonly options: FakeUpstreamOptions) {
    for (let i = 0;; i++) {
      const udp = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      const port = (udp.addr as Deno.NetAddr).port;
      try {
        this.tcp = Deno.listen({ hostname: "127.0.0.1", port });
        this.udp = udp;
        this.port = port;
        break;
      } catch (err) {
        udp.close();
        if (i > 5) throw err;
      }
    }
    this.#loops.push(this.#udpLoop(), this.#tcpLoop());
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  answer(query: Uint8Array, transport: "udp" | "tcp"): Uint8Array {
    const q = packet.decode(Buffer.from(query));
    const question = q.questions![0];
    const name = question.name.toLowerCase();
    this.queries.push({ name, type: question.type, transport });
    const records = this.options.records[name];
    const truncated = transport === "udp" && this.options.truncateUdp?.has(name);
    const answers = truncated
      ? []
      : (records ?? []).filter((r) => r.type === question.type || r.type === "CNAME");
    return packet.encode({
      id: q.id,
      type: "response",
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE |
        (truncated ? packet.TRUNCATED_RESPONSE : 0) |
        (records || truncated ? 0 : 3),
      questions: q.questions,
      answers,
      authorities: answers.length || truncated ? [] : [{
        name: "example.",
        type: "SOA",
        ttl: 60,
        data: {
          mname: "ns.example",
          rname: "h.example",
          serial: 1,
          refresh: 1,
          retry: 1,
          expire: 1,
          minimum: 20,
        },
      }],
      additionals: q.additionals?.filter((a) => a.type === "OPT"),
    });
  }

  async #udpLoop(): Promise<void> {
    for (;;) {
      let msg: Uint8Array, addr: Deno.Addr;
      try {
        [msg, addr] = await this.udp.receive();
      } catch {
        return;
      }
      let resp: Uint8Array;
      try {
        resp = this.answer(msg, "udp");
      } catch {
        continue; // undecodable (fuzz input): no answer
      }
      await this.udp.send(resp, addr).catch(() => {});
    }
  }

  async #tcpLoop(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.tcp.accept();
      } catch {
        return;
      }
      this.#conns.add(conn);
      this.#loops.push((async () => {
        try {
          const head = new Uint8Array(2);
          for (;;) {
            if (!(await readFull(conn, head))) break;
            const body = new Uint8Array((head[0] << 8) | head[1]);
            if (!(await readFull(conn, body))) break;
            const resp = this.answer(body, "tcp");
            const framed = new Uint8Array(resp.length + 2);
            framed[0] = resp.length >> 8;
            framed[1] = resp.length & 0xff;
            framed.set(resp, 2);
            await conn.write(framed);
          }
        } catch {
          // connection reset by the test: nothing to answer
        } finally {
          this.#conns.delete(conn);
          try {
            conn.close();
          } catch { /* closed */ }
        }
      })());
    }
  }

  async close(): Promise<void> {
    this.udp.close();
    this.tcp.close();
    for (const c of this.#conns) c.close();
    await Promise.allSettled(this.#loops);
  }
}

async function readFull(conn: Deno.Conn, buf: Uint8Array): Promise<boolean> {
  let off = 0;
  while (off < buf.length) {
    const n = await conn.read(buf.subarray(off));
    if (n === null) return false;
    off += n;
  }
  return true;
}

/** A UDP port nobody listens on (bound, read back, closed). */
export function closedUdpPort(): number {
  const s = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}

export interface DigRecord {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

export interface DigResult {
  status: string;
  flags: string[];
  answer: DigRecord[];
  authority: DigRecord[];
  additional: DigRecord[];
  /** "UDP" or "TCP" as dig reports it in the SERVER line; null when no answer. */
  transport: string | null;
  raw: string;
  ms: number;
}

/** Runs `dig @127.0.0.1 -p PORT NAME TYPE …` and parses its output. */
export async function dig(
  port: number,
  name: string,
  type = "A",
  extra: string[] = [],
  server = "127.0.0.1",
): Promise<DigResult> {
  const t0 = performance.now();
  const out = await new Deno.Command("dig", {
    args: [`@${server}`, "-p", String(port), name, type, "+tries=1", "+time=3", ...extra],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const raw = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const ms = performance.now() - t0;
  const status = /status: ([A-Z]+)/.exec(raw)?.[1] ?? "NONE";
  const flags = (/;; flags: ([a-z ]*);/.exec(raw)?.[1] ?? "").trim().split(/\s+/).filter(Boolean);
  const section = (title: string): DigRecord[] => {
    const m = new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)(\\n\\n|$)`).exec(raw);
    if (!m) return [];
    return m[1].split("\n").filter((l) => l && !l.startsWith(";")).map((l) => {
      const [n, ttl, , t, ...data] = l.split(/\s+/);
      return { name: n, ttl: Number(ttl), type: t, data: data.join(" ") };
    });
  };
  const transport = /;; SERVER: [^\n]*\((UDP|TCP)\)/.exec(raw)?.[1] ?? null;
  return {
    status,
    flags,
    answer: section("ANSWER"),
    authority: section("AUTHORITY"),
    additional: section("ADDITIONAL").filter((r) => r.type !== "OPT"),
    transport,
    raw,
    ms,
  };
}

/** A query built with dns-packet; `tcp` adds the 2-byte length prefix. */
export function encodeQuery(
  q: { id: number; name: string; type: string; tcp?: boolean; edns?: boolean },
): Uint8Array {
  const msg = packet.encode({
    id: q.id,
    type: "query",
    flags: packet.RECURSION_DESIRED,
    questions: [{ name: q.name, type: q.type as packet.RecordType, class: "IN" }],
    additionals: q.edns ? [{ type: "OPT", name: ".", udpPayloadSize: 1232 } as packet.Answer] : [],
  });
  if (!q.tcp) return new Uint8Array(msg); // a copy: Buffer#slice() would share memory
  const framed = new Uint8Array(msg.length + 2);
  framed[0] = msg.length >> 8;
  framed[1] = msg.length & 0xff;
  framed.set(msg, 2);
  return framed;
}

/** Reads `n` length-prefixed answers and decodes them. */
export async function readTcpAnswers(conn: Deno.Conn, n: number): Promise<packet.Packet[]> {
  const out: packet.Packet[] = [];
  const head = new Uint8Array(2);
  for (let i = 0; i < n; i++) {
    if (!(await readFull(conn, head))) throw new Error(`connection closed after ${i} answers`);
    const body = new Uint8Array((head[0] << 8) | head[1]);
    if (!(await readFull(conn, body))) throw new Error("connection closed mid-answer");
    out.push(packet.decode(Buffer.from(body)));
  }
  return out;
}

/** Awaits a rejection with an instance of `cls` and returns the error. */
export async function rejectsWith<E extends Error>(
  fn: () => Promise<unknown>,
  cls: new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof cls) return err;
    throw new Error(`expected ${cls.name}, got ${err}`, { cause: err });
  }
  throw new Error(`expected ${cls.name}, nothing was thrown`);
}
