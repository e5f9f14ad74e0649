import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { dialTargets, PerPeerLimit } from "./dialback.ts";
import {
  decodeDialback,
  type DialbackMessage,
  encodeDialback,
  MAX_DIALBACK_BODY,
  readDialback,
} from "./dialback_wire.ts";
import { WireError } from "./errors.ts";
import { inNetworks } from "./local_net.ts";
import { decideReachability } from "./reachability.ts";
import { relayRole } from "./self_relay.ts";

const nonce = new Uint8Array(16).fill(7);

function roundTrip(m: DialbackMessage): DialbackMessage {
  const b = encodeDialback(m);
  return decodeDialback(b.subarray(0, 3), b.subarray(3));
}

Deno.test("dial-back messages round-trip; bad ones are WireErrors", async () => {
  const req: DialbackMessage = {
    type: "request",
    nonce,
    addrs: [{ ip: "198.18.0.11", port: 20006 }, { ip: "10.0.0.1", port: 1 }],
  };
  assertEquals(roundTrip(req), req);
  const res: DialbackMessage = {
    type: "result",
    status: "ok",
    outside: true,
    addr: { ip: "198.18.0.21", port: 20006 },
  };
  assertEquals(roundTrip(res), res);
  assertEquals(roundTrip({ type: "result", status: "no-address", outside: false }), {
    type: "result",
    status: "no-address",
    outside: false,
  });
  assertEquals(roundTrip({ type: "prove", nonce }), { type: "prove", nonce });
  assertEquals(roundTrip({ type: "proved" }), { type: "proved" });
  // Too many addresses, IPv6, port 0, a short nonce.
  const nine = Array.from({ length: 9 }, (_, i) => ({ ip: `10.0.0.${i}`, port: 1 }));
  assertThrows(() => encodeDialback({ type: "request", nonce, addrs: nine }), WireError);
  assertThrows(
    () => encodeDialback({ type: "request", nonce, addrs: [{ ip: "::1", port: 1 }] }),
    WireError,
  );
  assertThrows(() => encodeDialback({ type: "prove", nonce: new Uint8Array(3) }), WireError);
  const bad = (bytes: number[]) => {
    const b = Uint8Array.from(bytes);
    return () => decodeDialback(b.subarray(0, 3), b.subarray(3));
  };
  assertThrows(bad([2, 4, 0]), WireError); // version
  assertThrows(bad([1, 9, 0]), WireError); // type
  assertThrows(bad([1, 4, 1, 0]), WireError); // proved with a body
  assertThrows(bad([1, 2, 3, 9, 0, 0]), WireError); // status
  assertThrows(bad([1, 2, 9, 1, 0, 4, 1, 2, 3, 4, 0, 0]), WireError); // port 0
  // A length above the bound is refused before its body is read.
  let asked = 0;
  await readDialback((n) => {
    asked += n;
    return Promise.resolve(Uint8Array.from([1, 1, MAX_DIALBACK_BODY + 1]));
  }).then(() => assert(false), (err) => assert(err instanceof WireError));
  assertEquals(asked, 3);
});

Deno.test("a helper dials only the asker's observed IP or its configured addresses", () => {
  const listen = [{ ip: "198.18.1.11", port: 20006 }, { ip: "10.9.9.9", port: 7 }];
  // Behind a NAT: the LAN addresses become the observed (NAT) IP, same ports.
  assertEquals(dialTargets("198.18.0.21", listen, [], 4), [
    { ip: "198.18.0.21", port: 20006 },
    { ip: "198.18.0.21", port: 7 },
  ]);
  // No NAT: the address itself.
  assertEquals(dialTargets("198.18.1.11", listen.slice(0, 1), [], 4), [
    { ip: "198.18.1.11", port: 20006 },
  ]);
  // A listed relay's advertiseAddress is dialled as announced; others at the observed IP.
  assertEquals(
    dialTargets("198.18.0.21", [{ ip: "198.18.1.12", port: 20006 }], [{
      ip: "198.18.1.12",
      port: 20006,
    }], 4),
    [{ ip: "198.18.1.12", port: 20006 }],
  );
  // Over a relay nothing is observed: only configured addresses, else nothing.
  assertEquals(dialTargets(undefined, listen, [], 4), []);
  // Never more than the cap.
  const many = Array.from({ length: 8 }, (_, i) => ({ ip: "10.0.0.1", port: 100 + i }));
  assertEquals(dialTargets("198.18.0.21", many, [], 3).length, 3);
});

Deno.test("dial-back requests are limited per peer and minute", () => {
  let t = 0;
  const limit = new PerPeerLimit(3, () => t);
  assertEquals([1, 2, 3, 4].map(() => limit.allow("p")), [true, true, true, false]);
  assert(limit.allow("q"), "another peer has its own budget");
  t = 60_001;
  assert(limit.allow("p"), "a minute later");
});

Deno.test("reachability verdicts: one outside success, or two distinct failures", () => {
  const a = (helper: string, outcome: "ok" | "failed" | "unproven", outside = true) => ({
    helper,
    outcome,
    outside,
  });
  assertEquals(decideReachability([]), "unknown");
  assertEquals(decideReachability([a("r1", "ok")]), "reachable");
  // A LAN neighbour dialling back proves nothing about outside.
  assertEquals(decideReachability([a("a2", "ok", false)]), "unknown");
  assertEquals(decideReachability([a("r1", "failed")]), "unknown");
  assertEquals(decideReachability([a("r1", "failed"), a("r2", "failed")]), "unreachable");
  assertEquals(
    decideReachability([a("r1", "failed"), a("r2", "failed"), a("a2", "ok", false)]),
    "unreachable",
  );
  assertEquals(decideReachability([a("r1", "failed"), a("r2", "ok")]), "reachable");
  // A success without the proof reaching us is no answer.
  assertEquals(decideReachability([a("r1", "unproven"), a("r2", "failed")]), "unknown");
  assertEquals(decideReachability([a("r1", "failed")], 1), "unreachable");
  // Failures of LAN neighbours do not count (a timed-out dial-back on a busy LAN host).
  assertEquals(
    decideReachability([a("a2", "failed", false), a("a3", "failed", false)]),
    "unknown",
  );
  assertEquals(decideReachability([a("r1", "failed"), a("a2", "failed", false)]), "unknown");
});

Deno.test("relay role: listed relays relay until unreachable; others only when none are configured and reachable", () => {
  const role = (
    listed: boolean,
    relaysConfigured: boolean,
    verdict: "unknown" | "reachable" | "unreachable",
    selfRelay = true,
  ) => relayRole({ listed, relaysConfigured, selfRelay, verdict });
  assertEquals(role(true, true, "unknown"), { check: true, serve: true });
  assertEquals(role(true, true, "reachable"), { check: true, serve: true });
  assertEquals(role(true, true, "unreachable"), { check: true, serve: false });
  assertEquals(role(false, false, "unknown"), { check: true, serve: false });
  assertEquals(role(false, false, "reachable"), { check: true, serve: true });
  assertEquals(role(false, false, "unreachable"), { check: true, serve: false });
  assertEquals(role(false, false, "reachable", false), { check: false, serve: false });
  assertEquals(role(false, true, "reachable"), { check: false, serve: false });
});

Deno.test("local networks by CIDR; 198.18.0.0/15 is a network like any other", () => {
  const nets = ["127.0.0.1/8", "198.18.1.11/24", "fe80::1/64"];
  assert(inNetworks("198.18.1.12", nets));
  assert(!inNetworks("198.18.0.11", nets));
  assert(inNetworks("127.9.9.9", nets));
  assert(!inNetworks("::1", nets));
  assert(inNetworks("8.8.8.8", ["0.0.0.0/0"]));
  assert(!inNetworks("198.18.0.21", ["198.18.0.11/32"]));
});
