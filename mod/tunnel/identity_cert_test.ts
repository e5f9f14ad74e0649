import { deepStrictEqual as assertEquals, notEqual, ok as assert } from "node:assert/strict";
import { TestPki } from "../../tests/support/pki.ts";
import { agentGroup, readN, sees, tcpEcho, waitFor } from "./test_util.ts";

const NODES = new Set(["a", "b", "c", "d"]);
const enc = new TextEncoder();

Deno.test("with KubeEdge certificates only nodes holding one of the CA join; a re-keyed node is accepted again", async () => {
  const pki = await TestPki.create();
  const psk = crypto.getRandomValues(new Uint8Array(32));
  const echo = tcpEcho();
  const { start, stopAll } = agentGroup(NODES, psk);
  try {
    const ca = await pki.ca("kubeedge");
    const other = await pki.ca("other");
    const idA = await pki.node(ca, "a");
    const idB = await pki.node(ca, "b", { subject: "/CN=b", key: "rsa" });
    const a = await start({ name: "a", ip: "127.0.60.1", options: { identity: idA } });
    const b = await start({
      name: "b",
      ip: "127.0.60.2",
      bootstrap: [a.full],
      options: { identity: idB },
    });
    await waitFor(() => sees(a, "b") && sees(b, "a"), 5000, "a and b to see each other");

    // The right PSK, but a certificate of another CA (c) or none at all (d).
    const idC = { ...(await pki.node(other, "c")), caFile: other.certFile };
    const c = await start({
      name: "c",
      ip: "127.0.60.3",
      bootstrap: [a.full],
      options: { identity: idC },
    });
    const d = await start({ name: "d", ip: "127.0.60.4", bootstrap: [a.full] });
    const refused = a.metrics.counter("edgemesh_tunnel_claims_refused_total", "", ["reason"]);
    await waitFor(() => refused.get({ reason: "attestation" }) >= 2, 5000, "c and d refused");
    await waitFor(
      () => c.tunnel.snapshot().peers.length === 0 && d.tunnel.snapshot().peers.length === 0,
      3000,
      "c and d disconnected",
    );
    assertEquals(a.tunnel.snapshot().peers.map((p) => p.node), ["b"]);
    assertEquals([a.tunnel.peerIdOf("c"), a.tunnel.peerIdOf("d")], [undefined, undefined]);

    // b reinstalled: a fresh state dir (new libp2p key), the same certificate.
    const oldB = b.tunnel.peerId;
    await b.stop();
    const b2 = await start({
      name: "b",
      ip: "127.0.60.5",
      bootstrap: [a.full],
      options: { identity: idB },
      allow: (ip, port) => ip === "127.0.0.1" && port === echo.port,
    });
    notEqual(b2.tunnel.peerId, oldB);
    await waitFor(
      () => a.tunnel.peerIdOf("b") === b2.tunnel.peerId && sees(a, "b") && sees(b2, "a"),
      5000,
      "a to accept the re-keyed b",
    );
    assertEquals(refused.get({ reason: "conflict" }), 0);
    const s = await a.tunnel.dialStream(
      { node: "b", ip: "127.0.0.1", port: echo.port, protocol: "tcp" },
      { timeoutMs: 3000 },
    );
    try {
      const w = s.writable.getWriter();
      await w.write(enc.encode("hello"));
      assertEquals(new TextDecoder().decode(await readN(s.readable.getReader(), 5)), "hello");
      await w.close();
    } finally {
      s.close();
    }
    await waitFor(
      async () => {
        const pins = JSON.parse(await Deno.readTextFile(`${a.stateDir}/tunnel-pins.json`));
        return pins.pins.b === b2.tunnel.peerId;
      },
      3000,
      "the new pin saved",
    );
    assert(!sees(a, "c") && !sees(a, "d"));
  } finally {
    await stopAll();
    await echo.close();
    await pki.close();
  }
});
