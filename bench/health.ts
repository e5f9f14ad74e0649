/**
 * Benchmark (not a test): the cost of one health round per node for groups of 50, 200 and
 * 1,000 simulated peers.
 *
 * - Bytes: the gossip exchange (push our digest, pull what we miss from `fanout` peers, one
 *   after the other) is simulated among all N nodes, counting the exact wire sizes; compared
 *   with a full mesh of the same compact digests and with SuperEdge's full mesh of JSON maps.
 * - CPU: the real code on one node: sign our digest, decode + verify the digests it receives
 *   (duplicates included), answer the exchanges it serves, and vote. Probing (one TCP connect
 *   + GET per peer) is measured separately on loopback, client and server in this process.
 *
 * Run: `deno run --unstable-net -A bench/health.ts [--sizes 50,200,1000] [--rounds 6]`
 */

import process from "node:process";
import { groupHash } from "../mod/health/groups.ts";
import { generateIdentity, type HealthIdentity } from "../mod/health/identity.ts";
import { DigestInbox } from "../mod/health/inbox.ts";
import { KeyPins } from "../mod/health/key_pins.ts";
import { effectiveFanout } from "../mod/health/options.ts";
import { probe } from "../mod/health/prober.ts";
import { FAIL, type ObserverRow, OK, vote } from "../mod/health/vote.ts";
import {
  encodeDigestBody,
  encodeExchange,
  packExchange,
  TYPE_EXCHANGE_REPLY,
  withSignature,
} from "../mod/health/wire.ts";

const ROUND_MS = 10_000;
/** Request line or status line plus headers of one HTTP/1.1 message, roughly. */
const HTTP_OVERHEAD = 200;
const VOTE_ROUNDS = 3;

export interface HealthBenchRow {
  members: number;
  fanout: number;
  /** Gossip (ours): bytes sent + received per node per round, messages started per node. */
  gossipBytes: number;
  gossipMessages: number;
  /** Digests received per node per round, duplicates included. */
  digestsReceived: number;
  /** Share of (node, originator) pairs holding a digest younger than voteTimeout. */
  coverage: number;
  /** Full mesh of the same digests (uncompressed, one per message), and SuperEdge's full mesh of JSON maps. */
  meshBytes: number;
  /** One digest, uncompressed and compressed (bytes). */
  digestBytes: number;
  digestCompressed: number;
  superEdgeBytes: number;
  /** CPU ms per node per round (sign, verify, serve, vote), and probing N-1 peers. */
  cpuMs: number;
  probeCpuMs: number;
}

function digestSize(n: number, nameLen = 9, groupLen = 1): number {
  return 2 + 1 + nameLen + 1 + groupLen + 16 + 8 + 4 + Math.ceil(n / 4) + 2 * n + 32 + 64;
}

/** Wire size of an exchange with k digests: measured on real compressed frames, linear in k. */
type SizeModel = (k: number) => number;

async function compressedModel(n: number): Promise<SizeModel> {
  const members = Array.from({ length: n }, (_, i) => `node-${String(i).padStart(4, "0")}`);
  const hash = await groupHash({ name: "*", members });
  const t0 = 1_800_000_000_000;
  const summary = new Float64Array(n).map((_, i) => (t0 - 7_000 + ((i * 7919) % 10_000)) * 1000);
  const sample = Math.min(64, n);
  const random = rng(n + 1);
  const digests: Uint8Array[] = [];
  for (let i = 0; i < sample; i++) {
    const id = await generateIdentity();
    const ts = t0 - ((i * 104_729) % 10_000);
    const states = new Uint8Array(n).fill(OK);
    states[(i * 31) % n] = FAIL;
    // Probes finish at different moments of the round (64 at a time): ages spread over 0.5 s.
    const observedAt = new Float64Array(n).map(() => ts - 100 - Math.floor(random() * 500));
    const body = encodeDigestBody({
      from: members[i],
      group: "*",
      seq: summary[i],
      ts,
      groupHash: hash,
      states,
      observedAt,
      publicKey: id.publicKey,
    });
    digests.push(withSignature(body, await id.sign(body)));
  }
  const size = async (k: number) =>
    (await packExchange(
      encodeExchange({
        type: TYPE_EXCHANGE_REPLY,
        groupHash: hash,
        summary,
        digests: digests.slice(0, k),
      }),
    )).length;
  const base = await size(0);
  const per = (await size(sample) - base) / sample;
  return (k) => base + k * per;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

/** Simulates `rounds` rounds of push-pull gossip among n nodes; sizes are exact. */
function simulateGossip(n: number, fanout: number, rounds: number, wire: SizeModel) {
  const random = rng(n);
  const have = Array.from({ length: n }, () => new Float64Array(n));
  let bytes = 0, messages = 0, received = 0, coverage = 0;
  for (let r = 1; r <= rounds; r++) {
    const order = [...Array(n).keys()].sort(() => random() - 0.5);
    for (const self of order) {
      have[self][self] = r;
      const peers = new Set<number>();
      while (peers.size < fanout) {
        const p = Math.floor(random() * n);
        if (p !== self) peers.add(p);
      }
      for (const p of peers) {
        const mine = have[self], theirs = have[p];
        if (theirs[self] < r) theirs[self] = r;
        received++; // the peer receives our digest
        let k = 0;
        for (let o = 0; o < n; o++) {
          if (theirs[o] > mine[o] && r - theirs[o] < VOTE_ROUNDS) {
            mine[o] = theirs[o];
            k++;
          }
        }
        received += k;
        messages++;
        // Request and reply each cross the wire once: count them for both ends (sent + received).
        bytes += 2 * (wire(1) + wire(k) + 2 * HTTP_OVERHEAD);
      }
    }
    if (r === rounds) {
      let fresh = 0;
      for (let i = 0; i < n; i++) {
        for (let o = 0; o < n; o++) if (r - have[i][o] < VOTE_ROUNDS) fresh++;
      }
      coverage = fresh / (n * n);
    }
  }
  return {
    bytesPerNode: bytes / (n * rounds),
    messagesPerNode: messages / (n * rounds),
    receivedPerNode: received / (n * rounds),
    coverage,
  };
}

function superEdgeMapBytes(n: number): number {
  // SuperEdge PUTs its whole {ip: {Normal, Time}} map to every other node each round.
  const map: Record<string, { Normal: boolean; Time: string }> = {};
  for (let i = 0; i < n; i++) {
    map[`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`] = {
      Normal: true,
      Time: "2026-11-22T01:00:00.123456789Z",
    };
  }
  const body = JSON.stringify(map).length + HTTP_OVERHEAD + 64; // plus headers and the HMAC
  return 2 * (n - 1) * body; // sent to n-1 peers, received from n-1 peers
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function measureCpu(
  n: number,
  receivedPerRound: number,
  servedPerRound: number,
  rounds: number,
): Promise<number> {
  const members = Array.from({ length: n }, (_, i) => `node-${String(i).padStart(4, "0")}`);
  const group = { name: "*", members };
  const hash = await groupHash(group);
  const ids: HealthIdentity[] = await Promise.all(members.map(() => generateIdentity()));
  const t0 = Date.now();
  const makeDigest = async (i: number, seq: number, ts: number) => {
    const states = new Uint8Array(n).fill(OK);
    states[(i + 1) % n] = FAIL;
    const observedAt = new Float64Array(n).fill(ts - 1500);
    const body = encodeDigestBody({
      from: members[i],
      group: "*",
      seq,
      ts,
      groupHash: hash,
      states,
      observedAt,
      publicKey: ids[i].publicKey,
    });
    return withSignature(body, await ids[i].sign(body));
  };
  let total = 0;
  for (let r = 1; r <= rounds; r++) {
    const ts = t0 + r * ROUND_MS;
    // Digests arriving this round (prepared outside the measurement: other nodes sign them).
    const incoming: Uint8Array[] = [];
    for (let k = 0; k < Math.round(receivedPerRound); k++) {
      incoming.push(await makeDigest(1 + (k % (n - 1)), r, ts));
    }
    const inbox = new DigestInbox({ pins: new KeyPins(""), now: () => ts }, {
      voteTimeoutMs: VOTE_ROUNDS * ROUND_MS,
    });
    inbox.setGroup(group, hash);
    const c0 = cpuMs();
    inbox.acceptOwn(await makeDigest(0, r, ts));
    for (const raw of incoming) await inbox.accept(raw);
    for (let s = 0; s < Math.round(servedPerRound); s++) {
      encodeExchange({
        type: TYPE_EXCHANGE_REPLY,
        groupHash: hash,
        summary: inbox.summary(),
        digests: inbox.newerThan(new Float64Array(n)).slice(0, 4),
      });
    }
    const rows: ObserverRow[] = inbox.rows();
    vote({ members, rows, now: ts, voteTimeoutMs: VOTE_ROUNDS * ROUND_MS });
    total += cpuMs() - c0;
  }
  return total / rounds;
}

async function measureProbeCpu(peers: number): Promise<number> {
  const ctl = new AbortController();
  const { promise, resolve } = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ctl.signal, onListen: resolve },
    () => Response.json({ node: "peer" }),
  );
  const addr = await promise;
  const samples = Math.min(peers, 200);
  try {
    const c0 = cpuMs();
    for (let i = 0; i < samples; i++) {
      const out = await probe({ node: "peer", hostname: "127.0.0.1", port: addr.port }, {
        timeoutMs: 2000,
        retries: 0,
      });
      if (!out.ok) throw new Error(`probe failed: ${out.error}`);
    }
    return ((cpuMs() - c0) / samples) * (peers - 1);
  } finally {
    ctl.abort();
    await server.finished;
  }
}

export async function runHealthBench(
  sizes = [50, 200, 1000],
  rounds = 6,
): Promise<HealthBenchRow[]> {
  const rows: HealthBenchRow[] = [];
  for (const n of sizes) {
    const fanout = effectiveFanout(n);
    const model = await compressedModel(n);
    const g = simulateGossip(n, fanout, rounds, model);
    const d = digestSize(n);
    const served = fanout; // on average each node serves as many exchanges as it starts
    rows.push({
      members: n,
      fanout,
      gossipBytes: g.bytesPerNode,
      gossipMessages: g.messagesPerNode,
      digestsReceived: g.receivedPerNode,
      coverage: g.coverage,
      meshBytes: 2 * (n - 1) * (d + HTTP_OVERHEAD),
      digestBytes: d,
      digestCompressed: model(1) - model(0),
      superEdgeBytes: superEdgeMapBytes(n),
      cpuMs: await measureCpu(n, g.receivedPerNode, served, 2),
      probeCpuMs: await measureProbeCpu(n),
    });
  }
  return rows;
}

function kb(b: number): string {
  return b >= 1024 * 1024 ? `${(b / 1024 / 1024).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const sizes = (arg("--sizes") ?? "50,200,1000").split(",").map(Number);
  const rows = await runHealthBench(sizes, Number(arg("--rounds") ?? 6));
  console.log("health round cost per node (bytes = sent + received)");
  console.log(
    "members | fanout | digest B (deflated) | gossip bytes | msgs | digests in | fresh coverage | mesh, same digests raw | SuperEdge JSON mesh | CPU ms sign+verify+serve+vote | CPU ms probes",
  );
  for (const r of rows) {
    console.log(
      [
        r.members,
        r.fanout,
        `${r.digestBytes} (${Math.round(r.digestCompressed)})`,
        kb(r.gossipBytes),
        r.gossipMessages.toFixed(1),
        r.digestsReceived.toFixed(0),
        `${(r.coverage * 100).toFixed(1)}%`,
        kb(r.meshBytes),
        kb(r.superEdgeBytes),
        r.cpuMs.toFixed(1),
        r.probeCpuMs.toFixed(1),
      ].join(" | "),
    );
  }
}
