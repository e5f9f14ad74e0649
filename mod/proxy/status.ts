/** The proxy's part of `/api/v1/status`: services, their ports and endpoints with state. */

import type { PathKind } from "../contracts/mod.ts";
import type { Connector } from "./connector.ts";
import type { ProxyOptions } from "./options.ts";
import type { PortState } from "./port_state.ts";

/** One row of `/api/v1/status` `services[]`. */
export interface ServiceStatusRow {
  namespace: string;
  name: string;
  clusterIPs: string[];
  ports: {
    name: string;
    port: number;
    protocol: "tcp" | "udp";
    kind: string;
    nodePort?: number;
    listen: string;
    listen6?: string;
    balancer: string;
  }[];
  endpoints: {
    ip: string;
    port: number;
    node?: string;
    ready: boolean;
    served: boolean;
    down: boolean;
    path: PathKind | "tunnel";
  }[];
}

export function statusRows(
  ports: Iterable<{ state: PortState; listener: { port: number }; listener6?: { port: number } }>,
  options: Pick<ProxyOptions, "listenAddress" | "listenAddressV6">,
  connector: Connector,
): ServiceStatusRow[] {
  const rows = new Map<string, ServiceStatusRow>();
  for (const { state, listener, listener6 } of ports) {
    const e = state.entry;
    const k = `${e.namespace}/${e.name}`;
    let row = rows.get(k);
    if (!row) {
      row = {
        namespace: e.namespace,
        name: e.name,
        clusterIPs: [...e.clusterIPs],
        ports: [],
        endpoints: [],
      };
      rows.set(k, row);
    }
    row.ports.push({
      name: e.portName,
      port: e.port,
      protocol: e.protocol,
      kind: e.kind,
      nodePort: e.nodePort,
      listen: `${options.listenAddress}:${listener.port}`,
      listen6: listener6 && `[${options.listenAddressV6}]:${listener6.port}`,
      balancer: state.balancer.description,
    });
    for (const ep of e.endpoints) {
      if (row.endpoints.some((x) => x.ip === ep.ip && x.port === ep.port)) continue;
      row.endpoints.push({
        ip: ep.ip,
        port: ep.port,
        node: ep.node,
        ready: ep.ready,
        served: ep.served,
        down: state.isDown(ep.id),
        path: connector.expectedPath(ep),
      });
    }
  }
  return [...rows.values()];
}
