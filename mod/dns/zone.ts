/**
 * The cluster zone: every name the catalog defines, compiled into precomputed responses.
 * `lookup()` is a map read; `rebuild()` runs when the catalog or health view changes.
 */

import type { CatalogEndpoint, ServiceCatalog } from "../kube/catalog.ts";
import { endpointServed, type HealthView, UNKNOWN_HEALTH } from "../contracts/mod.ts";
import { expandIPv6, isIPv4, isIPv6 } from "./options.ts";
import { buildMessage, type ResourceRecord } from "./writer.ts";
import { TYPE } from "./wire.ts";

/** Pods by IP in a namespace; when given, pod names (`a-b-c-d.ns.pod.<domain>`) are verified. */
export interface PodLookup {
  podsByIP(namespace: string, ip: string): readonly { name: string }[];
}

export interface ZoneDeps {
  catalog: ServiceCatalog;
  /** Default: every node "unknown" (ready endpoints served). */
  health?: HealthView;
  /** True when the node's cloud Ready condition is False/Unknown (for `endpointServed`). */
  nodeCloudNotReady?: (node: string) => boolean;
  pods?: PodLookup;
  /** Epoch ms, for the SOA serial. */
  now?: () => number;
}

export interface ZoneSettings {
  domain: string;
  ttlSeconds: number;
}

export interface NameEntry {
  /** Precomputed positive answers by qtype (ANY included when the name has records). */
  answers: Map<number, Uint8Array>;
  /** NOERROR, no answer, SOA in authority. */
  nodata: Uint8Array;
  /** The alias target of an ExternalName service. */
  cname?: string;
}

/** What the zone says about a name. */
export type ZoneAnswer =
  | {
    kind: "template";
    bytes: Uint8Array; /** An alias to follow for this qtype. */
    chase?: string;
  }
  | { kind: "built"; bytes: Uint8Array }
  | { kind: "nxdomain" }
  | { kind: "forward" };

interface Draft {
  records: Map<number, ResourceRecord[]>;
  seen: Set<string>;
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
function validName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split(".").every((l) => LABEL.test(l));
}

export function reverseName(ip: string): string | undefined {
  if (isIPv4(ip)) return ip.split(".").reverse().join(".") + ".in-addr.arpa";
  const g = expandIPv6(ip);
  if (!g) return undefined;
  const nibbles = g.map((x) => x.toString(16).padStart(4, "0")).join("").split("");
  return nibbles.reverse().join(".") + ".ip6.arpa";
}

/** The endpoint's DNS label: its hostname, else its IP with dashes (CoreDNS's scheme). */
export function endpointLabel(ep: CatalogEndpoint): string {
  if (ep.hostname && LABEL.test(ep.hostname.toLowerCase())) return ep.hostname.toLowerCase();
  return ep.ip.toLowerCase().replace(/[.:]/g, "-");
}

/** The compiled table, cloneable to a worker (the batched UDP path answers from it). */
export interface ZoneSnapshot {
  generation: number;
  domain: string;
  names: Map<string, NameEntry>;
  nxdomain: Uint8Array;
}

export class ClusterZone {
  #generation = 0;
  #invalidated = new Set<() => void>();
  #names = new Map<string, NameEntry>();
  #soaRecord!: ResourceRecord;
  #nxTemplate!: Uint8Array;
  #serial: number;
  #dirty = true;
  #nameCount = 0;
  readonly #suffix: string;
  readonly #podSuffix: string;

  constructor(private readonly deps: ZoneDeps, private readonly settings: ZoneSettings) {
    this.#suffix = "." + settings.domain;
    this.#podSuffix = ".pod." + settings.domain;
    this.#serial = Math.floor((deps.now ?? Date.now)() / 1000) >>> 0;
  }

  /** Marks the table stale; the next lookup (or `rebuild()`) recompiles it. */
  invalidate(): void {
    this.#dirty = true;
    this.#generation++;
    for (const l of [...this.#invalidated]) l();
  }

  /** Increases on every invalidation. */
  get generation(): number {
    return this.#generation;
  }

  /** Called synchronously on every invalidation. */
  onInvalidate(listener: () => void): () => void {
    this.#invalidated.add(listener);
    return () => this.#invalidated.delete(listener);
  }

  /** The current table (recompiled first when stale). */
  snapshot(): ZoneSnapshot {
    if (this.#dirty) this.rebuild();
    return {
      generation: this.#generation,
      domain: this.settings.domain,
      names: this.#names,
      nxdomain: this.#nxTemplate,
    };
  }

  get names(): number {
    if (this.#dirty) this.rebuild();
    return this.#nameCount;
  }

  /** True for names inside the cluster domain (where we are authoritative). */
  inZone(qname: string): boolean {
    return qname === this.settings.domain || qname.endsWith(this.#suffix);
  }

  lookup(qname: string, qtype: number): ZoneAnswer {
    if (this.#dirty) this.rebuild();
    const e = this.#names.get(qname);
    if (e) {
      const bytes = e.answers.get(qtype) ?? e.nodata;
      if (e.cname && qtype !== TYPE.CNAME && qtype !== TYPE.ANY) {
        return { kind: "template", bytes, chase: e.cname };
      }
      return { kind: "template", bytes };
    }
    if (!this.inZone(qname)) return { kind: "forward" };
    if (qname.endsWith(this.#podSuffix)) {
      const pod = this.#podAnswer(qname, qtype);
      if (pod) return { kind: "built", bytes: pod };
    }
    return { kind: "nxdomain" };
  }

  /** Header+question placeholder+SOA authority with NXDOMAIN; the question is patched per query. */
  get nxdomainTail(): Uint8Array {
    if (this.#dirty) this.rebuild();
    return this.#nxTemplate;
  }

  rebuild(): void {
    this.#dirty = false;
    this.#serial = (this.#serial + 1) >>> 0;
    const { domain, ttlSeconds: ttl } = this.settings;
    this.#soaRecord = {
      name: domain,
      type: TYPE.SOA,
      ttl,
      data: {
        mname: `ns.dns.${domain}`,
        rname: `hostmaster.${domain}`,
        serial: this.#serial,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: ttl,
      },
    };
    const drafts = new Map<string, Draft>();
    const short = new Map<string, Draft>();
    const draft = (name: string, map = drafts): Draft => {
      let d = map.get(name);
      if (!d) map.set(name, d = { records: new Map(), seen: new Set() });
      return d;
    };
    const add = (d: Draft, rr: ResourceRecord) => {
      const key = `${rr.type}|${JSON.stringify(rr.data)}`;
      if (d.seen.has(key)) return;
      d.seen.add(key);
      let list = d.records.get(rr.type);
      if (!list) d.records.set(rr.type, list = []);
      list.push(rr);
    };
    const addAt = (name: string, rr: Omit<ResourceRecord, "name" | "ttl">, map = drafts) =>
      add(draft(name, map), { ...rr, name, ttl } as ResourceRecord);
    const ipRecord = (ip: string) => ({ type: isIPv4(ip) ? TYPE.A : TYPE.AAAA, data: ip }) as const;

    addAt(domain, this.#soaRecord);
    draft(`svc.${domain}`);
    draft(`pod.${domain}`);
    const health = this.deps.health ?? UNKNOWN_HEALTH;
    const cloudNotReady = this.deps.nodeCloudNotReady ?? (() => false);

    for (const svc of this.deps.catalog.services()) {
      const ns = svc.namespace.toLowerCase();
      const sname = svc.name.toLowerCase();
      const base = `${sname}.${ns}.svc.${domain}`;
      if (!validName(base)) continue;
      draft(`${ns}.svc.${domain}`);
      draft(base);
      const shorts = [draft(`${sname}.${ns}`, short), draft(`${sname}.${ns}.svc`, short)];
      const addBase = (rr: Omit<ResourceRecord, "name" | "ttl">) => {
        addAt(base, rr);
        for (const [i, n] of [`${sname}.${ns}`, `${sname}.${ns}.svc`].entries()) {
          add(shorts[i], { ...rr, name: n, ttl } as ResourceRecord);
        }
      };
      if (svc.type === "ExternalName") {
        const target = (svc.externalName ?? "").toLowerCase().replace(/\.$/, "");
        if (validName(target)) addBase({ type: TYPE.CNAME, data: target });
        continue;
      }
      const served = svc.endpoints.filter((ep) =>
        (isIPv4(ep.ip) || isIPv6(ep.ip)) &&
        (svc.publishNotReadyAddresses || endpointServed(ep, health, cloudNotReady))
      );
      const addresses = svc.headless ? served.map((ep) => ep.ip) : svc.clusterIPs;
      for (const ip of addresses) if (isIPv4(ip) || isIPv6(ip)) addBase(ipRecord(ip));
      // Endpoint names, their reverse records.
      for (const ep of served) {
        const epName = `${endpointLabel(ep)}.${base}`;
        if (!validName(epName)) continue;
        addAt(epName, ipRecord(ep.ip));
        const rev = reverseName(ep.ip);
        if (rev) addAt(rev, { type: TYPE.PTR, data: epName });
      }
      for (const ip of svc.clusterIPs) {
        const rev = reverseName(ip);
        if (rev) addAt(rev, { type: TYPE.PTR, data: base });
      }
      // SRV: `_port._proto.base` for named ports, and every port on `base` itself.
      for (const port of svc.ports) {
        const proto = port.protocol.toLowerCase();
        const targets: { target: string; port: number; ip: string[] }[] = [];
        if (svc.headless) {
          for (const ep of served) {
            const p = ep.ports[port.name];
            if (!p) continue;
            targets.push({ target: `${endpointLabel(ep)}.${base}`, port: p.port, ip: [ep.ip] });
          }
        } else {
          targets.push({ target: base, port: port.port, ip: svc.clusterIPs });
        }
        const weight = Math.max(1, Math.floor(100 / Math.max(1, targets.length)));
        const portName = port.name.toLowerCase();
        const srvName = `_${portName}._${proto}.${base}`;
        const named = port.name !== "" && validName(srvName);
        if (named) draft(`_${proto}.${base}`);
        for (const t of targets) {
          if (!validName(t.target)) continue;
          const rr = {
            type: TYPE.SRV,
            data: { priority: 0, weight, port: t.port, target: t.target },
          } as const;
          addBase(rr);
          if (named) addAt(srvName, rr);
        }
        if (named) draft(srvName);
      }
    }
    for (const [name, d] of short) if (!drafts.has(name)) drafts.set(name, d);
    this.#compile(drafts);
  }

  #compile(drafts: Map<string, Draft>): void {
    const names = new Map<string, NameEntry>();
    const addressesOf = (drafts: Map<string, Draft>, name: string): ResourceRecord[] => {
      const d = drafts.get(name);
      return d ? [...(d.records.get(TYPE.A) ?? []), ...(d.records.get(TYPE.AAAA) ?? [])] : [];
    };
    for (const [name, d] of drafts) {
      const answers = new Map<number, Uint8Array>();
      const cname = d.records.get(TYPE.CNAME);
      const build = (qtype: number, rrs: ResourceRecord[]) => {
        const additional = rrs.filter((r) => r.type === TYPE.SRV).flatMap((r) =>
          addressesOf(drafts, (r.data as { target: string }).target)
        );
        answers.set(
          qtype,
          buildMessage({
            qname: name,
            qtype,
            rcode: 0,
            authoritative: true,
            answers: rrs,
            additional,
          }),
        );
      };
      const all: ResourceRecord[] = [];
      for (const [type, rrs] of d.records) {
        build(type, rrs);
        all.push(...rrs);
      }
      if (all.length) build(TYPE.ANY, all);
      const nodata = buildMessage({
        qname: name,
        qtype: TYPE.A,
        rcode: 0,
        authoritative: true,
        authority: [this.#soaRecord],
      });
      const entry: NameEntry = { answers, nodata };
      if (cname) {
        // Every other type at an alias gets the CNAME (the client or we follow it).
        entry.nodata = answers.get(TYPE.CNAME)!;
        entry.cname = cname[0].data as string;
      }
      names.set(name, entry);
    }
    this.#names = names;
    this.#nameCount = names.size;
    this.#nxTemplate = buildMessage({
      qname: "",
      qtype: TYPE.A,
      rcode: 3,
      authoritative: true,
      authority: [this.#soaRecord],
    });
  }

  #podAnswer(qname: string, qtype: number): Uint8Array | undefined {
    const labels = qname.slice(0, -this.#podSuffix.length).split(".");
    if (labels.length !== 2) return undefined;
    const [dashed, ns] = labels;
    if (!LABEL.test(ns) || !/^[0-9a-f-]{1,63}$/.test(dashed)) return undefined;
    let ip = dashed.replace(/-/g, ".");
    let type: number = TYPE.A;
    if (!isIPv4(ip)) {
      ip = dashed.replace(/-/g, ":");
      if (!isIPv6(ip)) return undefined;
      type = TYPE.AAAA;
    }
    if (this.deps.pods && this.deps.pods.podsByIP(ns, ip).length === 0) return undefined;
    const ttl = this.settings.ttlSeconds;
    const answers: ResourceRecord[] = qtype === type || qtype === TYPE.ANY
      ? [{ name: qname, ttl, type, data: ip } as ResourceRecord]
      : [];
    return buildMessage({
      qname,
      qtype,
      rcode: 0,
      authoritative: true,
      answers,
      authority: answers.length ? [] : [this.#soaRecord],
    });
  }
}
