/** Server-side printing (`meta.k8s.io/v1` Table) as kubectl asks for it. */

import type { ResourceDef } from "./metaserver_resources.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any> & {
  metadata: { name: string; namespace?: string; creationTimestamp?: string };
};

interface Column {
  name: string;
  type: string;
  format?: string;
  cell: (o: Obj) => string | number;
}

/** True when the Accept header asks for `as=Table`. */
export function wantsTable(req: Request): boolean {
  return /as=Table/.test(req.headers.get("accept") ?? "");
}

export function age(ts: string | undefined, now = Date.now()): string {
  if (!ts) return "<unknown>";
  const s = Math.max(0, Math.floor((now - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const NAME: Column = { name: "Name", type: "string", format: "name", cell: (o) => o.metadata.name };
const AGE: Column = { name: "Age", type: "string", cell: (o) => age(o.metadata.creationTimestamp) };

function servicePorts(o: Obj): string {
  const ports = (o.spec?.ports ?? []) as { port: number; protocol?: string; nodePort?: number }[];
  if (ports.length === 0) return "<none>";
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ""}/${p.protocol ?? "TCP"}`)
    .join(",");
}

function nodeReady(o: Obj): string {
  const c = ((o.status?.conditions ?? []) as { type: string; status: string }[]).find((c) =>
    c.type === "Ready"
  );
  return c?.status === "True" ? "Ready" : "NotReady";
}

const COLUMNS: Record<string, Column[]> = {
  services: [
    NAME,
    { name: "Type", type: "string", cell: (o) => o.spec?.type ?? "ClusterIP" },
    { name: "Cluster-IP", type: "string", cell: (o) => o.spec?.clusterIP ?? "<none>" },
    {
      name: "External-IP",
      type: "string",
      cell: (o) => (o.spec?.externalIPs ?? []).join(",") || "<none>",
    },
    { name: "Port(s)", type: "string", cell: servicePorts },
    AGE,
  ],
  nodes: [NAME, { name: "Status", type: "string", cell: nodeReady }, AGE],
  pods: [NAME, { name: "Status", type: "string", cell: (o) => o.status?.phase ?? "Unknown" }, AGE],
};

/** A Table of the objects; rows carry PartialObjectMetadata so `-A` can show namespaces. */
export function tableFor(def: ResourceDef, items: Obj[], resourceVersion: string): unknown {
  const cols = COLUMNS[def.plural] ?? [NAME, AGE];
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion },
    columnDefinitions: cols.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? "",
      description: "",
      priority: 0,
    })),
    rows: items.map((o) => ({
      cells: cols.map((c) => c.cell(o)),
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
    })),
  };
}
