/**
 * The edgemesh configuration schema: EdgeMesh's `edgemesh-agent.yaml` field names and
 * defaults, plus ours (CONTRACTS.md). Types are inferred from it (`Config`).
 */

import {
  checkDomain,
  checkHostPort,
  checkIP,
  checkIPOrHostPort,
  checkMultiaddr,
  checkOptionalIP,
  checkURL,
} from "./address.ts";
import { type DecodeCtx, type Infer, report, t } from "./schema_dsl.ts";

const checkIPOrStar = (v: string) => (v === "*" ? undefined : checkIP(v));
const port = (def: number, doc: string) => t.int(def, doc, { min: 0, max: 65535 });
const nodeNameCheck = (v: string) =>
  v === "" || /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(v)
    ? undefined
    : `must be a Kubernetes node name (lower-case letters, digits, "-" and "."), got ${
      JSON.stringify(v)
    }`;

export const relayNodeSchema = t.obj({
  nodeName: t.str(
    "",
    "Name of the node that acts as a relay.",
    (v) => v ? nodeNameCheck(v) : "must not be empty",
  ),
  advertiseAddress: t.list(
    t.str("", "An address (IP or host) under which the relay is reachable from other LANs."),
    "Addresses the relay announces.",
  ),
});

export const schema = t.obj({
  apiVersion: t.ignored("EdgeMesh's apiVersion header."),
  kind: t.ignored("EdgeMesh's kind header."),
  nodeName: t.str(
    "",
    "This node's name; falls back to env NODE_NAME, then the hostname.",
    nodeNameCheck,
  ),
  logLevel: t.oneOf(["error", "warn", "info", "debug"] as const, "info", "Log level."),
  kubeAPIConfig: t.obj({
    master: t.str("", "kube-apiserver URL (cloud nodes).", checkURL),
    kubeConfig: t.str("", "Path to a kubeconfig file (cloud nodes)."),
    contentType: t.str("application/json", "Accepted; only JSON is spoken."),
    qps: t.num(100, "Client-side request rate limit.", { min: 0 }),
    burst: t.int(200, "Client-side request burst.", { min: 0 }),
    manifestDir: t.str(
      "",
      "A folder of Kubernetes YAML files used as the cluster source instead of the metaserver.",
    ),
    deleteKubeConfig: t.ignored("EdgeMesh's deleteKubeConfig."),
    metaServer: t.obj({
      server: t.str("http://127.0.0.1:10550", "KubeEdge metaserver (edge list-watch).", checkURL),
      security: t.ignored("EdgeMesh's metaServer.security (TLS to the metaserver)."),
    }),
  }),
  commonConfig: t.obj({
    bridgeDeviceName: t.str("edgemesh0", "Linux bridge device holding bridgeDeviceIP."),
    bridgeDeviceIP: t.str("169.254.96.16", "Address DNS, proxy and SOCKS5 listen on.", checkIP),
    stateDir: t.str(
      "/var/lib/edgemesh",
      "Where identity, pins, snapshots and the synced cluster config live.",
    ),
    adminAddress: t.str(
      "127.0.0.1:10551",
      "Admin API (healthz, readyz, metrics, status).",
      checkHostPort,
    ),
    pprofConfig: t.ignored("EdgeMesh's pprofConfig."),
  }),
  modules: t.obj({
    edgeDNS: t.obj({
      enable: t.bool(true, "Run the DNS server."),
      listenAddress: t.listOrOne(
        t.str("", "", checkIP),
        "Addresses to listen on (default: the bridge IP).",
      ),
      listenPort: port(53, "DNS port."),
      clusterDomain: t.str("cluster.local", "Cluster domain.", checkDomain),
      ttl: t.dur("30s", "TTL of cluster answers."),
      upstreamServers: t.list(
        t.str("", "", checkIPOrHostPort),
        "Forwarders (default: resolv.conf minus ourselves).",
      ),
      cacheDNS: t.obj({
        enable: t.bool(false, "EdgeMesh's cacheDNS.enable (the forwarder always caches)."),
        autoDetect: t.bool(true, "EdgeMesh's cacheDNS.autoDetect (upstreams from resolv.conf)."),
        upstreamServers: t.list(t.str("", "", checkIPOrHostPort), "EdgeMesh's cacheDNS upstreams."),
        cacheTTL: t.dur("30s", "Upper bound of cached forwarded answers (seconds when a number).", {
          unitlessSeconds: true,
        }),
      }),
    }),
    edgeProxy: t.obj({
      enable: t.bool(true, "Run the service proxy."),
      listenAddress: t.str(
        "",
        "Address proxy listeners bind (default: the bridge IP).",
        checkOptionalIP,
      ),
      serviceFilterMode: t.oneOf(
        ["FilterIfLabelExists", "FilterIfLabelDoesNotExists"] as const,
        "FilterIfLabelExists",
        "Skip services with the label service.edgemesh.kubeedge.io/service-proxy-name (or those without it).",
      ),
      socks5Proxy: t.obj({
        enable: t.bool(false, "SOCKS5 listener reaching services and nodes by name."),
        listenAddress: t.str("", "SOCKS5 address (default: the bridge IP).", checkOptionalIP),
        listenPort: port(10800, "SOCKS5 port."),
      }),
      loadBalancer: t.obj({
        consistentHash: t.obj({
          partitionCount: t.int(100, "Ring partitions.", { min: 1 }),
          replicationFactor: t.int(10, "Ring replicas per endpoint.", { min: 1 }),
          load: t.num(1.25, "Bounded-load factor (max load relative to the average).", { min: 1 }),
        }),
      }),
      tcpIdleTimeout: t.dur("1h", "Idle TCP connections are closed after this.", { minMs: 1000 }),
      udpIdleTimeout: t.dur("60s", "Idle UDP flows are forgotten after this.", { minMs: 100 }),
      lanDirect: t.bool(
        true,
        "Cross-node traffic inside a LAN takes the kernel path instead of the tunnel.",
      ),
      intercept: t.bool(
        true,
        "Install iptables rules that send ClusterIP traffic to the proxy (needs root).",
      ),
    }),
    edgeTunnel: t.obj(
      {
        enable: t.bool(true, "Run the libp2p tunnel."),
        listenPort: port(20006, "Tunnel port."),
        listenAddress: t.listOrOne(
          t.str("", "", checkIP),
          "Addresses (default: all non-filtered interfaces).",
        ),
        transport: t.oneOf(["tcp", "ws", "quic"] as const, "tcp", "Only tcp is implemented."),
        rendezvous: t.str("EDGEMESH_PLAYGOUND", "Mesh name (mDNS service name and DHT namespace)."),
        relayNodes: t.list(relayNodeSchema, "Nodes that act as relays."),
        enableIpfsLog: t.ignored("EdgeMesh's enableIpfsLog."),
        maxCandidates: t.int(15, "Relay candidates considered.", { min: 1 }),
        heartbeatPeriod: t.dur("120s", "Relay re-check period (seconds when a number).", {
          unitlessSeconds: true,
        }),
        finderPeriod: t.dur("60s", "Peer discovery period (seconds when a number).", {
          unitlessSeconds: true,
        }),
        psk: t.obj({
          enable: t.bool(true, "Private network: only peers with the same pre-shared key connect."),
          path: t.str("/etc/edgemesh/psk", "PSK file (at least 32 random bytes)."),
        }),
        tunnelLimitConfig: t.obj({
          enable: t.bool(false, "Limit streams."),
          tunnelBaseStreamIn: t.int(10240, "Inbound streams in total.", { min: 1 }),
          tunnelBaseStreamOut: t.int(10240, "Outbound streams in total.", { min: 1 }),
          tunnelPeerBaseStreamIn: t.int(1024, "Inbound streams per peer.", { min: 1 }),
          tunnelPeerBaseStreamOut: t.int(1024, "Outbound streams per peer.", { min: 1 }),
        }),
        listenInterfaces: t.str("*", "Interfaces to listen on (comma-separated or *)."),
        extraFilteredInterfaces: t.listOrOne(
          t.str("", ""),
          "Interfaces never listened on, besides the built-in list.",
        ),
        metricConfig: t.obj({
          enable: t.bool(false, "Serve /metrics also on this port (EdgeMesh compatibility)."),
          port: port(9999, "Metrics port."),
        }),
        enableHolePunch: t.bool(true, "Upgrade relayed connections to direct ones through NATs."),
        relayOnly: t.bool(
          false,
          "Carry every stream through a relay, never directly (troubleshooting).",
        ),
        selfRelay: t.bool(
          true,
          "With no relayNodes, offer relay service when peers can dial this node back from outside its LAN.",
        ),
        hostPorts: t.list(
          t.int(0, "", { min: 1, max: 65535 }),
          "Ports of this node's own addresses peers may reach through the tunnel (SOCKS5 to a node by name).",
          [22],
        ),
        mdns: t.obj({ enable: t.bool(true, "Find LAN peers with mDNS.") }),
        bootstrapPeers: t.list(
          t.str("", "", checkMultiaddr),
          "Peers dialled at start (where mDNS cannot work).",
        ),
        identity: t.obj(
          {
            certFile: t.str("", "KubeEdge node certificate that signs node-name claims."),
            keyFile: t.str("", "Its private key."),
            caFile: t.str("", "CA that verifies peers' certificates."),
          },
          "",
          (v, path, ctx: DecodeCtx) => {
            const set = [v.certFile, v.keyFile, v.caFile].filter((x) => x !== "").length;
            if (set !== 0 && set !== 3) {
              report(ctx, path, "certFile, keyFile and caFile must be set together");
            }
          },
        ),
      },
      "",
      (v, path, ctx) => {
        if (v.transport !== "tcp") {
          report(
            ctx,
            `${path}.transport`,
            `"${v.transport}" is not implemented; tcp is used`,
            "warning",
          );
        }
        const seen = new Set<string>();
        v.relayNodes.forEach((r, i) => {
          if (seen.has(r.nodeName)) {
            report(ctx, `${path}.relayNodes[${i}].nodeName`, `duplicate relay "${r.nodeName}"`);
          }
          seen.add(r.nodeName);
        });
      },
    ),
    edgeHealth: t.obj(
      {
        enable: t.bool(true, "Probe peers and vote on node health."),
        listenAddress: t.str(
          "",
          "Probe listener address (default: all addresses).",
          checkOptionalIP,
        ),
        listenPort: port(51005, "Probe port."),
        probeInterval: t.dur("10s", "Probe period.", { minMs: 50 }),
        probeTimeout: t.dur("2s", "Probe timeout.", { minMs: 10 }),
        probeRetries: t.int(2, "Retries before a probe fails.", { min: 0, max: 10 }),
        voteTimeout: t.dur("30s", "Verdicts older than this are not counted.", { minMs: 100 }),
        kubeletPort: port(0, "Also probe the kubelet/edgecore port (0 = not probed)."),
      },
      "",
      (v, path, ctx) => {
        if (v.probeTimeout >= v.probeInterval) {
          report(ctx, `${path}.probeTimeout`, "must be shorter than probeInterval");
        }
        if (v.voteTimeout < 2 * v.probeInterval) {
          report(
            ctx,
            `${path}.voteTimeout`,
            "must be at least twice probeInterval, or votes expire between probes",
          );
        }
      },
    ),
    edgeGateway: t.obj({
      enable: t.bool(false, "Run the ingress gateway."),
      interfaces: t.listOrOne(
        t.str("", ""),
        "Interfaces whose addresses gateway servers bind (empty: all).",
      ),
      nic: t.str("*", "EdgeMesh's name for interfaces: comma-separated names or *."),
      includeIP: t.listOrOne(
        t.str("", "", checkIPOrStar),
        "Addresses to bind (* = all of the interfaces).",
      ),
      excludeIP: t.listOrOne(t.str("", "", checkIPOrStar), "Addresses never bound (* = none)."),
    }),
    edgeCNI: t.ignored("EdgeMesh's edgeCNI (beta) is out of scope."),
  }),
});

export type Config = Infer<typeof schema>;
export type TunnelConfig = Config["modules"]["edgeTunnel"];
export type DnsConfig = Config["modules"]["edgeDNS"];
export type ProxyConfig = Config["modules"]["edgeProxy"];
export type HealthConfig = Config["modules"]["edgeHealth"];
export type GatewayConfig = Config["modules"]["edgeGateway"];
