import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { renderRules } from "./iptables.ts";

Deno.test("renderRules() DNATs ClusterIPs and NodePorts with endpoints, REJECTs those without", () => {
  const text = renderRules([
    {
      comment: "ns/b:53/udp",
      clusterIPs: ["198.19.0.2", "fd00::2"],
      port: 53,
      protocol: "udp",
      listenAddress: "169.254.96.16",
      listenPort: 40001,
      hasEndpoints: false,
    },
    {
      comment: "ns/a:80/tcp",
      clusterIPs: ["198.19.0.1"],
      port: 80,
      protocol: "tcp",
      nodePort: 30080,
      listenAddress: "169.254.96.16",
      listenPort: 40000,
      hasEndpoints: true,
    },
  ]);
  assertEquals(text.split("\n"), [
    "*nat",
    ":EDGEMESH-SERVICES - [0:0]",
    ":EDGEMESH-NODEPORTS - [0:0]",
    '-A EDGEMESH-SERVICES -d 198.19.0.1/32 -p tcp -m tcp --dport 80 -m comment --comment "ns/a:80/tcp" -j DNAT --to-destination 169.254.96.16:40000',
    '-A EDGEMESH-NODEPORTS -p tcp -m tcp --dport 30080 -m comment --comment "ns/a:80/tcp" -j DNAT --to-destination 169.254.96.16:40000',
    "-A EDGEMESH-SERVICES -m addrtype --dst-type LOCAL -j EDGEMESH-NODEPORTS",
    "COMMIT",
    "*filter",
    ":EDGEMESH-REJECT - [0:0]",
    '-A EDGEMESH-REJECT -d 198.19.0.2/32 -p udp -m udp --dport 53 -m comment --comment "ns/b:53/udp" -j REJECT --reject-with icmp-port-unreachable',
    "COMMIT",
    "",
  ]);
});

Deno.test("renderRules(…, 6) writes IPv6 ClusterIPs and NodePorts to the IPv6 listener", () => {
  const text = renderRules([
    {
      comment: "ns/a:80/tcp",
      clusterIPs: ["198.19.0.1", "fd98:19::1"],
      port: 80,
      protocol: "tcp",
      nodePort: 30080,
      listenAddress: "169.254.96.16",
      listenPort: 40000,
      listen6: { address: "fd98:18::1", port: 40002 },
      hasEndpoints: true,
    },
    {
      comment: "ns/v4only:80/tcp",
      clusterIPs: ["198.19.0.2"],
      port: 80,
      protocol: "tcp",
      listenAddress: "169.254.96.16",
      listenPort: 40001,
      hasEndpoints: true,
    },
  ], 6);
  assertEquals(text.split("\n").filter((l) => l.startsWith("-A")), [
    '-A EDGEMESH-SERVICES -d fd98:19::1/128 -p tcp -m tcp --dport 80 -m comment --comment "ns/a:80/tcp" -j DNAT --to-destination [fd98:18::1]:40002',
    '-A EDGEMESH-NODEPORTS -p tcp -m tcp --dport 30080 -m comment --comment "ns/a:80/tcp" -j DNAT --to-destination [fd98:18::1]:40002',
    "-A EDGEMESH-SERVICES -m addrtype --dst-type LOCAL -j EDGEMESH-NODEPORTS",
  ]);
});
