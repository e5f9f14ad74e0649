/** Builds the libp2p host configuration from the tunnel options. */

import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { autoNAT } from "@libp2p/autonat";
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { identify, identifyPush } from "@libp2p/identify";
import type { ConnectionGater, PrivateKey } from "@libp2p/interface";
import { CLAIM_DHT_NAMESPACE, selectClaimRecord, validateClaimRecord } from "./claim_dht.ts";
import type { ClaimVerifier } from "./directory.ts";
import { kadDHT, passthroughMapper } from "@libp2p/kad-dht";
import { mdns } from "@libp2p/mdns";
import { ping } from "@libp2p/ping";
import { networkKey, pskProtector } from "./psk_protector.ts";
import { tcp } from "@libp2p/tcp";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import type { Libp2pOptions } from "libp2p";
import { TunnelStartError } from "./errors.ts";
import type { ResolvedTunnelOptions } from "./options.ts";

/** Largest yamux receive window per stream (the yamux default, 16 MiB). */
export const MAX_STREAM_WINDOW = 16 << 20;

/** A do-nothing service that hands us the libp2p components (transport manager etc.). */
export class ComponentsHandle {
  constructor(readonly components: Record<string, unknown>) {}
}

/** Short, safe token from the rendezvous string for protocol names and the mDNS tag. */
export function rendezvousSlug(rendezvous: string): string {
  return rendezvous.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(
    0,
    40,
  ) ||
    "edgemesh";
}

/** `/ip4/…/tcp/…` from a multiaddr, `ip`, `ip:port` or `[v6]:port`. */
export function toMultiaddr(addr: string, defaultPort: number): Multiaddr {
  if (addr.startsWith("/")) return multiaddr(addr);
  let host = addr;
  let port = defaultPort;
  const m6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr);
  if (m6) {
    host = m6[1];
    if (m6[2]) port = Number(m6[2]);
  } else if (/^[^:]+:\d+$/.test(addr)) {
    const i = addr.lastIndexOf(":");
    host = addr.slice(0, i);
    port = Number(addr.slice(i + 1));
  }
  const proto = host.includes(":") ? "ip6" : /^[\d.]+$/.test(host) ? "ip4" : "dns";
  return multiaddr(`/${proto}/${host}/tcp/${port}`);
}

/** The 32-byte private-network key derived from the PSK file's bytes. */
export function swarmKey(psk: Uint8Array): Promise<Uint8Array> {
  return networkKey(psk);
}

export interface HostParams {
  options: ResolvedTunnelOptions;
  privateKey: PrivateKey;
  gater: ConnectionGater;
  announce: Multiaddr[];
  psk?: Uint8Array;
  /** With a certificate identity: DHT claim records must carry a valid attestation too. */
  claimVerifier?: ClaimVerifier;
}

export function hostOptions(p: HostParams): Libp2pOptions<Record<string, unknown>> {
  const o = p.options;
  const listen = (o.listenAddresses.length ? o.listenAddresses : ["0.0.0.0"]).map((a) => {
    try {
      return a.startsWith("/")
        ? a
        : toMultiaddr(a.includes(":") ? `[${a}]` : a, o.listenPort).toString();
    } catch (err) {
      throw new TunnelStartError(`Invalid tunnel listen address "${a}"`, { cause: err });
    }
  });
  const slug = rendezvousSlug(o.rendezvous);
  const services: Record<string, unknown> = {
    identify: identify({ runOnLimitedConnection: true }),
    // Tells connected peers at once when we start or stop offering relay service (HOP).
    identifyPush: identifyPush({ runOnLimitedConnection: true }),
    ping: ping({ runOnLimitedConnection: true, maxInboundStreams: 64, maxOutboundStreams: 64 }),
    dht: kadDHT({
      protocol: `/edgemesh/${slug}/kad/1.0.0`,
      clientMode: false,
      peerInfoMapper: passthroughMapper,
      allowQueryWithZeroPeers: true,
      validators: {
        [CLAIM_DHT_NAMESPACE]: (key: Uint8Array, value: Uint8Array) =>
          validateClaimRecord(key, value, p.claimVerifier),
      },
      selectors: { [CLAIM_DHT_NAMESPACE]: selectClaimRecord },
    }),
    autonat: autoNAT({ protocolPrefix: "edgemesh" }),
    handle: (components: Record<string, unknown>) => new ComponentsHandle(components),
  };
  // No DCUtR: it never gets through two MASQUERADE NATs, and its one-sided first dial leaves
  // conntrack state that breaks a simultaneous open. Our own punch (punch.ts) replaces it.
  const peerDiscovery = o.mdns
    ? [mdns({ serviceTag: `_${slug}._udp.local`, interval: 10_000 })]
    : [];
  return {
    start: false,
    privateKey: p.privateKey,
    addresses: { listen, ...(p.announce.length ? { announce: p.announce.map(String) } : {}) },
    transports: [
      tcp(),
      circuitRelayTransport({ reservationConcurrency: 2, reservationCompletionTimeout: 3000 }),
    ],
    connectionEncrypters: [noise()],
    // Many streams may open on a connection before its muxer is ready (yamux allows 10 by
    // default and then resets the whole connection).
    streamMuxers: [
      // A paused stream (our reader above its high-water mark) still receives up to the
      // yamux window: its read buffer must hold that much, or the stream is reset.
      yamux({
        maxEarlyStreams: 1024,
        maxInboundStreams: 8192,
        maxOutboundStreams: 8192,
        streamOptions: {
          maxStreamWindowSize: MAX_STREAM_WINDOW,
          maxReadBufferLength: MAX_STREAM_WINDOW + (4 << 20),
        },
      }),
    ],
    ...(p.psk ? { connectionProtector: pskProtector(p.psk) } : {}),
    connectionGater: p.gater,
    connectionManager: {
      maxConnections: 1024,
      dialTimeout: 5000,
      reconnectRetries: 10,
      reconnectRetryInterval: 250,
      reconnectBackoffFactor: 2,
    },
    connectionMonitor: {
      pingInterval: o.monitorPingIntervalMs,
      // Tolerant: a ping queued behind megabytes of data must not kill a busy connection. On
      // a relayed connection the answer waits behind everything in flight on the circuit (up
      // to a stream window, MAX_STREAM_WINDOW): 2 s aborted bulk transfers under CPU load.
      // Hung relays are detected faster by the relay manager, which also watches traffic.
      pingTimeout: { minTimeout: 10_000, maxTimeout: 30_000 },
      abortConnectionOnPingFailure: true,
    },
    peerDiscovery,
    services,
  } as Libp2pOptions<Record<string, unknown>>;
}
