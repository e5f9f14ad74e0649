/**
 * The tunnel: a libp2p mesh between agents that implements the `Dialer` contract.
 *
 * - Identity: an Ed25519 key kept in `stateDir` (mode 0600); node names are bound to peer
 *   IDs by signed claims exchanged on every connection (`/edgemesh/claim/1.0.0`) and pinned
 *   on first use; a peer claiming a name that is not a cluster Node, or a pinned name with
 *   another key, is disconnected and denied. Optional private network (PSK, `@libp2p/pnet`).
 *   With `identity` (KubeEdge node certificate, key, CA; attest.ts) claims are also signed by
 *   the certificate and every claim must carry one of the same CA naming its node; a node
 *   reinstalled with a new key but the same certificate name replaces its pin.
 * - `/edgemesh/proxy/1.0.0`: TCP bytes or framed UDP datagrams to `ip:port` on another node;
 *   the receiver dials only what its `LocalTargets` allows (else `forbidden`).
 * - Relays: nodes in `relayNodes` run our circuit relay v2 server (standard wire protocol,
 *   no per-circuit limits, bounded buffers, members only); others keep reservations on the
 *   nearest two (primary and hot standby, chosen by ping RTT with hysteresis), fail over when
 *   the primary's connection closes or it stops answering, and reconnect relays that return.
 * - Reachability (`/edgemesh/dialback/1.0.0`): connected peers open a new connection back to
 *   us; a listed relay that nobody outside its LAN can reach stops relaying (and says so), and
 *   with no `relayNodes` a reachable node offers relay service itself (`selfRelay`).
 * - Discovery: bootstrap peers, mDNS, and a kad-dht under our own protocol prefix, repeated.
 *   Every node also stores its own claim in the DHT (`/edgemesh/claim/<node>`, claim_dht.ts),
 *   where a node no connected peer told us about is looked up.
 * - Hole punching (`enableHolePunch`, `/edgemesh/punch/1.0.0`; libp2p's DCUtR is not used):
 *   over a relayed connection both sides learn their NAT's address from the relay, agree on a
 *   moment, and simultaneously connect from a dedicated punch port; the TCP connection that
 *   forms is upgraded by libp2p's TCP transport (PSK, Noise, yamux) into a direct connection,
 *   which later streams prefer. Failed punches are retried with backoff.
 *
 * `new Tunnel(deps, options)` is a lifecycle `Service` and a `Dialer`.
 * @module
 */
export { Tunnel } from "./tunnel.ts";
export type { PingResult, TunnelStatus } from "./tunnel.ts";
export type { PeerView } from "./peer_views.ts";
export type { RelayView } from "./relays.ts";
export { resolveOptions, TUNNEL_DEFAULTS } from "./options.ts";
export type {
  LocalTargets,
  RelayNode,
  TunnelDeps,
  TunnelOptions,
  TunnelTestHooks,
} from "./options.ts";
export { ClaimError, IdentityError, TunnelStartError, WireError } from "./errors.ts";
export { KEY_FILE, loadOrCreateIdentity, PIN_FILE } from "./identity.ts";
export { Attestor, certNodeNames, CLOCK_SKEW_MS } from "./attest.ts";
export type { CertIdentity } from "./attest.ts";
export { chooseRelays, clearlyBetter } from "./ranking.ts";
export { CLAIM_PROTOCOL } from "./claim.ts";
export { PROXY_PROTOCOL } from "./wire.ts";
export { PUNCH_PROTOCOL } from "./punch_wire.ts";
export { DIALBACK_PROTOCOL } from "./dialback_wire.ts";
export { SELF_RELAY_PROTOCOL } from "./relay_role.ts";
export type { Verdict } from "./reachability.ts";
export { PUNCH_DEFAULTS } from "./punch.ts";
