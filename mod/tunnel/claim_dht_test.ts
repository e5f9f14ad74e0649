import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { encodeClaim, signClaim } from "./claim.ts";
import { claimKey, selectClaimRecord, validateClaimRecord } from "./claim_dht.ts";
import { type Agent, echoOnce, startAgent, tcpEcho, waitFor } from "./test_util.ts";

Deno.test("DHT claim records: only a claim signed by its peer's key, under its own node's key; the newest wins", async () => {
  const key = await generateKeyPair("Ed25519");
  const id = peerIdFromPrivateKey(key).toString();
  const older = await signClaim(key, "b", id, 1000);
  const newer = await signClaim(key, "b", id, 2000);
  await validateClaimRecord(claimKey("b"), encodeClaim(newer));
  await rejects(validateClaimRecord(claimKey("a"), encodeClaim(newer)), /stored under/);
  const forged = encodeClaim({ ...newer, sig: newer.sig.map((x, i) => (i === 0 ? x ^ 1 : x)) });
  await rejects(validateClaimRecord(claimKey("b"), forged), /bad signature/);
  await rejects(validateClaimRecord(claimKey("b"), new Uint8Array([1, 2, 3])), /malformed/);
  // With a certificate identity the record must be attested as well.
  const needsCert = { verify: (c: { att?: unknown }) => (c.att ? undefined : "no attestation") };
  await rejects(
    validateClaimRecord(claimKey("b"), encodeClaim(newer), needsCert),
    /no attestation/,
  );
  const garbage = new Uint8Array([9, 9]);
  assertEquals(
    selectClaimRecord(claimKey("b"), [encodeClaim(older), garbage, encodeClaim(newer)]),
    2,
  );
});

Deno.test("a node no connected peer told about is found through its claim in the DHT", async () => {
  const NODES = new Set(["r1", "a", "b"]);
  const echo = tcpEcho();
  const agents: Agent[] = [];
  // Nobody forwards other nodes' claims: a can learn b only from the DHT.
  const hooks = (deny: string) => ({
    noClaimForwarding: true,
    denyDialAddress: (ma: string) => ma.startsWith(`/ip4/${deny}/`),
  });
  try {
    const r1 = await startAgent({
      name: "r1",
      ip: "127.0.62.1",
      known: NODES,
      relayNodes: [{ nodeName: "r1", advertiseAddress: [] }],
      hooks: { noClaimForwarding: true },
      options: { heartbeatPeriodMs: 300 },
    });
    agents.push(r1);
    const relayNodes = [{ nodeName: "r1", advertiseAddress: [r1.addr] }];
    const b = await startAgent({
      name: "b",
      ip: "127.0.62.3",
      known: NODES,
      relayNodes,
      bootstrap: [r1.full],
      hooks: hooks("127.0.62.2"),
      allow: (ip, port) => ip === "127.0.0.1" && port === echo.port,
      options: { heartbeatPeriodMs: 300 },
    });
    agents.push(b);
    const a = await startAgent({
      name: "a",
      ip: "127.0.62.2",
      known: NODES,
      relayNodes,
      bootstrap: [r1.full],
      hooks: hooks("127.0.62.3"),
      options: { heartbeatPeriodMs: 300 },
    });
    agents.push(a);
    await waitFor(
      () => [a, b].every((x) => x.tunnel.snapshot().relays.some((r) => r.reserved)),
      8000,
      "reservations on r1",
    );
    assertEquals(a.tunnel.peerIdOf("b"), undefined, "gossip told a nothing about b");
    let s;
    const end = performance.now() + 8000;
    for (;;) {
      // b stores its claim each heartbeat; the first may precede the DHT knowing r1.
      try {
        s = await echoOnce(a, echo.port, 2000, "b");
        break;
      } catch (err) {
        if (performance.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assertEquals(s.path, "tunnel-relay");
    assert(a.tunnel.peerIdOf("b") === b.tunnel.peerId, "a learned b's peer ID from the DHT");
  } finally {
    for (const x of agents.reverse()) await x.stop();
    await echo.close();
  }
});
