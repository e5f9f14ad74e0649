/**
 * `deno run --allow-net --unstable-net upstream_dns_main.ts --host 127.0.0.1 --port 53 --zone Z --answer IP`
 *
 * A fake upstream DNS server (UDP) for a node's loopback: `A` questions for `Z` or names under
 * it are answered with `IP` (TTL 60), everything else gets NXDOMAIN. Prints
 * `{"ready":true,"host","port"}` once listening and one `{"query":name}` line per question, so a
 * test can tell that the agent really forwarded.
 */

import packet from "dns-packet";
import { Buffer } from "node:buffer";

function flag(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Deno.args[i + 1] : fallback;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

/** The answer to one query packet. */
export function answer(query: Uint8Array, zone: string, ip: string): Uint8Array {
  const q = packet.decode(Buffer.from(query));
  const question = q.questions?.[0];
  const name = (question?.name ?? "").toLowerCase().replace(/\.$/, "");
  const inZone = name === zone || name.endsWith(`.${zone}`);
  const hit = inZone && question?.type === "A";
  return packet.encode({
    type: "response",
    id: q.id,
    flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (inZone ? 0 : 3),
    questions: q.questions,
    answers: hit ? [{ type: "A", class: "IN", name: question!.name, ttl: 60, data: ip }] : [],
  });
}

if (import.meta.main) {
  const host = flag("host", "127.0.0.1");
  const zone = flag("zone").toLowerCase();
  const ip = flag("answer");
  const sock = Deno.listenDatagram({
    transport: "udp",
    hostname: host,
    port: Number(flag("port", "53")),
  });
  const port = (sock.addr as Deno.NetAddr).port;
  console.log(JSON.stringify({ ready: true, host, port }));
  for (;;) {
    const [d, from] = await sock.receive();
    try {
      const q = packet.decode(Buffer.from(d));
      console.log(JSON.stringify({ query: q.questions?.[0]?.name ?? "" }));
      await sock.send(answer(d, zone, ip), from);
    } catch (err) {
      console.error(`bad query: ${err}`);
    }
  }
}
