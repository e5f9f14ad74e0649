import { match, ok as assert } from "node:assert/strict";
import { renderStatus } from "./render.ts";

Deno.test("edgemesh status shows peers with their path, relays with their state, and this node as a relay", () => {
  const text = renderStatus({
    node: "a1",
    version: "0.1.0",
    uptimeSeconds: 12,
    modules: { tunnel: { state: "ready", detail: "3 peers" } },
    peers: [
      { node: "b1", path: "tunnel-relay", relay: "r1", rttMs: 4.2, peerId: "12D3Koo…" },
      { node: "a2", path: "tunnel-direct", relay: null, rttMs: 0.3, peerId: "12D3Koo…" },
    ],
    relays: [
      { node: "r1", role: "primary", rttMs: 1.4, reserved: true },
      {
        node: "a2",
        role: "candidate",
        rttMs: null,
        reserved: false,
        error: "does not offer relay service",
      },
    ],
    relayService: { reachability: "unreachable", relaying: false },
    services: [],
    health: { group: null, members: [] },
  }, { color: false });
  match(text, /b1\s+via r1\s+4\.2 ms/);
  match(text, /a2\s+tunnel-direct/);
  match(text, /RELAYS \(2\)\s+this node: unreachable, not relaying/);
  match(text, /r1\s+primary\s+1\.4 ms\s+reserved/);
  match(text, /a2\s+candidate\s+- ms\s+does not offer relay service/);
  assert(!text.includes("\x1b["), "no colour codes without --color");
});
