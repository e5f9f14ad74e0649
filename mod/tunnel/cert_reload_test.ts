import { deepStrictEqual as assertEquals, notEqual } from "node:assert/strict";
import { TestPki } from "../../tests/support/pki.ts";
import { agentGroup, echoOnce, sees, tcpEcho, waitFor } from "./test_util.ts";

const NODES = new Set(["a", "b", "c"]);

Deno.test("a rotated node certificate is picked up without a restart; a broken one is refused and the current kept", async () => {
  const pki = await TestPki.create();
  const psk = crypto.getRandomValues(new Uint8Array(32));
  const echo = tcpEcho();
  const { start, stopAll } = agentGroup(NODES, psk);
  try {
    const ca = await pki.ca("kubeedge");
    const idA = await pki.node(ca, "a");
    const a = await start({
      name: "a",
      ip: "127.0.61.1",
      options: { identity: idA, identityCheckMs: 50 },
    });
    const b = await start({
      name: "b",
      ip: "127.0.61.2",
      bootstrap: [a.full],
      options: { identity: await pki.node(ca, "b") },
      allow: (ip, port) => ip === "127.0.0.1" && port === echo.port,
    });
    await waitFor(() => sees(a, "b") && sees(b, "a"), 5000, "a and b to see each other");
    const first = a.tunnel.snapshot().certificate!;
    const reloads = a.metrics.counter("edgemesh_tunnel_identity_reloads_total", "", ["result"]);

    // edgecore rotates: a new key and certificate written over the old files.
    const next = await pki.node(ca, "a", { days: 60 });
    await Deno.writeFile(idA.keyFile, await Deno.readFile(next.keyFile));
    await Deno.writeFile(idA.certFile, await Deno.readFile(next.certFile));
    await waitFor(
      () => a.tunnel.snapshot().certificate?.serial !== first.serial,
      5000,
      "a to sign with the rotated certificate",
    );
    notEqual(a.tunnel.snapshot().certificate!.validTo, first.validTo);
    assertEquals(reloads.get({ result: "renewed" }) >= 1, true);
    // The renewed claim satisfies peers: an existing one keeps working, a new one accepts it.
    await echoOnce(a, echo.port, 3000, "b");
    const c = await start({
      name: "c",
      ip: "127.0.61.3",
      bootstrap: [a.full],
      options: { identity: await pki.node(ca, "c") },
    });
    await waitFor(() => sees(c, "a") && sees(a, "c"), 5000, "a new peer to accept a's claim");
    const refused = c.metrics.counter("edgemesh_tunnel_claims_refused_total", "", ["reason"]);
    assertEquals(refused.get({ reason: "attestation" }), 0);

    // A broken replacement (not a certificate) is refused; the rotated one stays in use.
    const inUse = a.tunnel.snapshot().certificate!.serial;
    await Deno.writeTextFile(idA.certFile, "not a certificate\n");
    await waitFor(
      () => reloads.get({ result: "invalid" }) >= 1,
      5000,
      "the broken certificate to be refused",
    );
    assertEquals(a.tunnel.snapshot().certificate!.serial, inUse);
    await echoOnce(a, echo.port, 3000, "b");
  } finally {
    await stopAll();
    await echo.close();
    await pki.close();
  }
});
