/** The tunnel's metrics (names prefixed `edgemesh_tunnel_`). */

import type { Registry } from "../metrics/mod.ts";

export function tunnelMetrics(r: Registry) {
  return {
    streamsOpen: r.gauge("edgemesh_tunnel_streams_open", "Proxy streams open now", [
      "direction",
      "protocol",
    ]),
    streams: r.counter(
      "edgemesh_tunnel_streams_total",
      "Proxy streams opened, by direction, protocol, path and result",
      ["direction", "protocol", "path", "result"],
    ),
    bytes: r.counter("edgemesh_tunnel_bytes_total", "Payload bytes through proxy streams", [
      "direction",
    ]),
    rejects: r.counter(
      "edgemesh_tunnel_proxy_rejects_total",
      "Inbound proxy streams refused or reset, by reason",
      ["reason"],
    ),
    claimsRefused: r.counter(
      "edgemesh_tunnel_claims_refused_total",
      "Peers refused for their claim",
      ["reason"],
    ),
    peers: r.gauge("edgemesh_tunnel_peers", "Verified peers connected, by path", ["path"]),
    reservations: r.gauge("edgemesh_tunnel_relay_reservations", "Relay reservations held (1/0)", [
      "relay",
      "role",
    ]),
    relayRtt: r.gauge("edgemesh_tunnel_relay_rtt_seconds", "Last measured RTT to each relay", [
      "relay",
    ]),
    relayCircuits: r.gauge("edgemesh_tunnel_relay_circuits", "Circuits this relay forwards now"),
    relayBytes: r.counter("edgemesh_tunnel_relay_bytes_total", "Bytes this relay forwarded"),
    relaySwitches: r.counter("edgemesh_tunnel_relay_switches_total", "Primary relay changes", [
      "reason",
    ]),
    punches: r.counter(
      "edgemesh_tunnel_hole_punches_total",
      "Hole punches (relayed → direct upgrades), by role and result",
      ["role", "result"],
    ),
    punchSeconds: r.histogram(
      "edgemesh_tunnel_hole_punch_seconds",
      "Time from starting a hole punch to a direct connection (initiator)",
    ),
    dialSeconds: r.histogram("edgemesh_tunnel_dial_seconds", "Time to open a proxy stream", [
      "path",
    ]),
    identityReloads: r.counter(
      "edgemesh_tunnel_identity_reloads_total",
      "Changes of the node certificate files: renewed (now in use) or invalid (kept the old)",
      ["result"],
    ),
  };
}

export type TunnelMetrics = ReturnType<typeof tunnelMetrics>;
