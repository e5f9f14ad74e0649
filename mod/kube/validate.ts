/**
 * Shape checks for objects arriving from a source. A malformed object is skipped (and
 * logged with its kind, namespace, name and field) instead of reaching readers that trust
 * the types of `types.ts`. Only the fields we read are checked.
 */

import { KIND_RESOURCES } from "./resources.ts";
import type { Kind, KindMap } from "./types.ts";

export interface ObjectProblem {
  kind: Kind;
  namespace?: string;
  name?: string;
  /** Dotted path of the offending field, e.g. `spec.ports[0].port`. */
  field: string;
  problem: string;
}

export type CheckResult<K extends Kind> = { ok: true; object: KindMap[K] } | {
  ok: false;
  error: ObjectProblem;
};

type Rec = Record<string, unknown>;
type Check = (o: Rec, fail: (field: string, problem: string) => never) => void;

const isRec = (v: unknown): v is Rec => typeof v === "object" && v !== null && !Array.isArray(v);

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function expectString(
  v: unknown,
  field: string,
  fail: (f: string, p: string) => never,
  optional = true,
) {
  if (v === undefined && optional) return;
  if (typeof v !== "string") fail(field, `expected a string, got ${typeName(v)}`);
}

function expectStringMap(v: unknown, field: string, fail: (f: string, p: string) => never) {
  if (v === undefined || v === null) return;
  if (!isRec(v)) fail(field, `expected a map of strings, got ${typeName(v)}`);
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== "string") fail(`${field}.${k}`, `expected a string, got ${typeName(x)}`);
  }
}

function expectArray(v: unknown, field: string, fail: (f: string, p: string) => never): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(field, `expected a list, got ${typeName(v)}`);
  return v;
}

function expectRec(v: unknown, field: string, fail: (f: string, p: string) => never): Rec {
  if (v === undefined || v === null) return {};
  if (!isRec(v)) fail(field, `expected an object, got ${typeName(v)}`);
  return v;
}

function expectPort(v: unknown, field: string, fail: (f: string, p: string) => never) {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) {
    fail(field, `expected a port number, got ${JSON.stringify(v)}`);
  }
}

function checkPorts(list: unknown, field: string, fail: (f: string, p: string) => never) {
  expectArray(list, field, fail).forEach((p, i) => {
    const r = expectRec(p, `${field}[${i}]`, fail);
    expectPort(r.port, `${field}[${i}].port`, fail);
    expectString(r.name, `${field}[${i}].name`, fail);
    expectString(r.protocol, `${field}[${i}].protocol`, fail);
  });
}

const CHECKS: Record<Kind, Check> = {
  services: (o, fail) => {
    const spec = expectRec(o.spec, "spec", fail);
    expectString(spec.clusterIP, "spec.clusterIP", fail);
    expectArray(spec.clusterIPs, "spec.clusterIPs", fail).forEach((ip, i) =>
      expectString(ip, `spec.clusterIPs[${i}]`, fail, false)
    );
    expectString(spec.type, "spec.type", fail);
    checkPorts(spec.ports, "spec.ports", fail);
    expectStringMap(spec.selector, "spec.selector", fail);
  },
  endpoints: (o, fail) => {
    expectArray(o.subsets, "subsets", fail).forEach((s, i) => {
      const sub = expectRec(s, `subsets[${i}]`, fail);
      for (const key of ["addresses", "notReadyAddresses"]) {
        expectArray(sub[key], `subsets[${i}].${key}`, fail).forEach((a, j) => {
          const addr = expectRec(a, `subsets[${i}].${key}[${j}]`, fail);
          expectString(addr.ip, `subsets[${i}].${key}[${j}].ip`, fail, false);
          expectString(addr.nodeName, `subsets[${i}].${key}[${j}].nodeName`, fail);
        });
      }
      checkPorts(sub.ports, `subsets[${i}].ports`, fail);
    });
  },
  endpointslices: (o, fail) => {
    expectString(o.addressType, "addressType", fail);
    expectArray(o.endpoints, "endpoints", fail).forEach((e, i) => {
      const ep = expectRec(e, `endpoints[${i}]`, fail);
      const addrs = expectArray(ep.addresses, `endpoints[${i}].addresses`, fail);
      addrs.forEach((a, j) => expectString(a, `endpoints[${i}].addresses[${j}]`, fail, false));
      expectString(ep.nodeName, `endpoints[${i}].nodeName`, fail);
      const cond = expectRec(ep.conditions, `endpoints[${i}].conditions`, fail);
      for (const c of ["ready", "serving", "terminating"]) {
        if (cond[c] !== undefined && cond[c] !== null && typeof cond[c] !== "boolean") {
          fail(`endpoints[${i}].conditions.${c}`, `expected a boolean, got ${typeName(cond[c])}`);
        }
      }
    });
    checkPorts(o.ports, "ports", fail);
  },
  nodes: (o, fail) => {
    const status = expectRec(o.status, "status", fail);
    expectArray(status.addresses, "status.addresses", fail).forEach((a, i) => {
      const r = expectRec(a, `status.addresses[${i}]`, fail);
      expectString(r.address, `status.addresses[${i}].address`, fail, false);
    });
    expectArray(status.conditions, "status.conditions", fail).forEach((c, i) => {
      const r = expectRec(c, `status.conditions[${i}]`, fail);
      expectString(r.type, `status.conditions[${i}].type`, fail, false);
    });
  },
  pods: (o, fail) => {
    const spec = expectRec(o.spec, "spec", fail);
    expectString(spec.nodeName, "spec.nodeName", fail);
    const status = expectRec(o.status, "status", fail);
    expectString(status.podIP, "status.podIP", fail);
  },
  configmaps: (o, fail) => {
    expectStringMap(o.data, "data", fail);
    expectStringMap(o.binaryData, "binaryData", fail);
  },
  secrets: (o, fail) => {
    expectStringMap(o.data, "data", fail);
    expectStringMap(o.stringData, "stringData", fail);
  },
  destinationrules: (o, fail) => {
    expectString(expectRec(o.spec, "spec", fail).host, "spec.host", fail);
  },
  gateways: (o, fail) => {
    const spec = expectRec(o.spec, "spec", fail);
    expectArray(spec.servers, "spec.servers", fail).forEach((s, i) =>
      expectRec(s, `spec.servers[${i}]`, fail)
    );
  },
  virtualservices: (o, fail) => {
    const spec = expectRec(o.spec, "spec", fail);
    expectArray(spec.hosts, "spec.hosts", fail).forEach((h, i) =>
      expectString(h, `spec.hosts[${i}]`, fail, false)
    );
    expectArray(spec.gateways, "spec.gateways", fail).forEach((h, i) =>
      expectString(h, `spec.gateways[${i}]`, fail, false)
    );
  },
};

class Invalid extends Error {
  constructor(readonly field: string, readonly problem: string) {
    super(problem);
  }
}

/**
 * Checks an object for `kind`. On success returns it without `metadata.managedFields`
 * (large, never read). `defaultNamespace` fills a missing namespace of a namespaced kind
 * (manifests); without it, a namespaced object must carry one.
 */
export function checkObject<K extends Kind>(
  kind: K,
  raw: unknown,
  defaultNamespace?: string,
): CheckResult<K> {
  const fail = (field: string, problem: string): never => {
    throw new Invalid(field, problem);
  };
  let namespace: string | undefined;
  let name: string | undefined;
  try {
    if (!isRec(raw)) fail("", `expected an object, got ${typeName(raw)}`);
    const o = raw as Rec;
    const meta = o.metadata;
    if (!isRec(meta)) {
      fail(
        "metadata",
        meta === undefined ? "missing" : `expected an object, got ${typeName(meta)}`,
      );
    }
    const m = meta as Rec;
    if (typeof m.namespace === "string") namespace = m.namespace;
    if (typeof m.name === "string") name = m.name;
    if (m.name === undefined || m.name === "") fail("metadata.name", "missing");
    expectString(m.name, "metadata.name", fail, false);
    expectString(m.namespace, "metadata.namespace", fail);
    expectString(m.resourceVersion, "metadata.resourceVersion", fail);
    expectStringMap(m.labels, "metadata.labels", fail);
    expectStringMap(m.annotations, "metadata.annotations", fail);
    const namespaced = KIND_RESOURCES[kind].namespaced;
    if (namespaced && !namespace) {
      if (defaultNamespace === undefined) fail("metadata.namespace", "missing");
      namespace = defaultNamespace;
    }
    CHECKS[kind](o, fail);
    const { managedFields: _drop, ...metadata } = m;
    if (namespaced) metadata.namespace = namespace;
    else delete metadata.namespace;
    return { ok: true, object: { ...o, metadata } as unknown as KindMap[K] };
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return { ok: false, error: { kind, namespace, name, field: err.field, problem: err.problem } };
  }
}
