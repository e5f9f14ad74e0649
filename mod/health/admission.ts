/**
 * The admission webhook's logic (admission.k8s.io/v1, mutating, UPDATE of nodes, endpoints
 * and endpointslices). For a node whose cloud Ready is Unknown and whose group voted it
 * healthy (our `edgemesh.kubeedge.io/edge-health` annotation), it removes the
 * `node.kubernetes.io/unreachable:NoExecute` taint, moves its Endpoints `notReadyAddresses`
 * back to `addresses` and sets its EndpointSlice endpoints `conditions.ready` to true.
 * `alwaysReachable` strips that taint from every node (global no-eviction). Malformed input
 * gets an allowed response with a warning, never an exception.
 *
 * A "healthy" annotation whose last confirmation (`refreshedAt`, or `decidedAt` for older
 * agents) is older than `maxAnnotationAgeMs` counts as absent: a group that died entirely
 * (power loss) no longer writes, so standard Kubernetes eviction applies again. The
 * response then carries a warning naming the stale annotation and its age.
 */

import type { Endpoints, EndpointSlice, Node, StoreReader } from "../kube/mod.ts";
import { type Logger, LogRateLimiter } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import {
  type AnnotationAge,
  annotationAge,
  EDGE_HEALTH_ANNOTATION,
  edgeHealthOf,
  isStale,
} from "./annotations.ts";
import { AdmissionConfigError } from "./errors.ts";
import {
  cloudReady,
  type GroupConfig,
  HEALTH_CONFIG_NAME,
  HEALTH_CONFIG_NAMESPACE,
  readGroupConfig,
} from "./groups.ts";

export const UNREACHABLE_TAINT = "node.kubernetes.io/unreachable";

export interface AdmissionOptions {
  /** Strip every `node.kubernetes.io/unreachable:NoExecute` taint (no eviction ever). */
  alwaysReachable?: boolean;
  /**
   * A healthy annotation not confirmed for this long (flag `--annotation-max-age`) counts as
   * absent. Keep it above 2 × the agents' refresh period + a probe interval + voteTimeout
   * (writer hand-over). Default 300000 (5 min).
   */
  maxAnnotationAgeMs?: number;
}

export const ADMISSION_DEFAULTS = { maxAnnotationAgeMs: 300_000 } as const;

export interface AdmissionDeps {
  /** Nodes (for endpoints) and the edge-health-config ConfigMap. */
  store: StoreReader;
  logger: Logger;
  metrics: Registry;
  /** Namespace of `edge-health-config` (flag `--namespace`). Default "kube-system". */
  configNamespace?: string;
  /** Wall clock in ms, compared with the annotations' times. Default Date.now. */
  clock?: { now(): number };
}

export type JsonPatchOp =
  | { op: "add" | "replace" | "test"; path: string; value: unknown }
  | { op: "remove"; path: string };

export interface AdmissionResponse {
  uid: string;
  allowed: true;
  patchType?: "JSONPatch";
  /** base64 of the JSON patch. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewOut {
  apiVersion: "admission.k8s.io/v1";
  kind: "AdmissionReview";
  response: AdmissionResponse;
}

/** Refuses a bad max age, and global no-eviction together with unit checking. */
export function checkAdmissionOptions(options: AdmissionOptions, config: GroupConfig): void {
  const maxAge = options.maxAnnotationAgeMs;
  if (maxAge !== undefined && !(Number.isFinite(maxAge) && maxAge > 0)) {
    throw new AdmissionConfigError(
      `--annotation-max-age: ${maxAge} ms must be a duration > 0 (e.g. "5m")`,
    );
  }
  if (options.alwaysReachable && config.unitInternalCheck) {
    throw new AdmissionConfigError(
      `--always-reachable (global no-eviction) cannot be combined with unit checking: ConfigMap ` +
        `"${HEALTH_CONFIG_NAME}" sets unit-internal-check to "true"; set it to "false" or drop --always-reachable`,
    );
  }
}

interface Result {
  patch: JsonPatchOp[];
  warnings: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The group annotations as one review sees them at `now`: a "healthy" annotation counts only
 * while fresh; each stale one met adds a warning (once per node) and its node to `stale`.
 */
export class GroupJudge {
  readonly warnings: string[] = [];
  readonly stale: string[] = [];
  #seen = new Map<string, boolean>();

  constructor(readonly now: number, readonly maxAgeMs: number) {}

  /** True when the node carries a fresh "healthy" annotation. */
  healthy(node: Node | undefined): boolean {
    const name = node?.metadata?.name ?? "?";
    const known = this.#seen.get(name);
    if (known !== undefined) return known;
    const a = edgeHealthOf(node);
    let fresh = false;
    if (a?.state === "healthy") {
      const age = annotationAge(a, this.now);
      fresh = !isStale(age, this.maxAgeMs);
      if (!fresh) {
        this.stale.push(name);
        this.warnings.push(staleWarning(name, age, this.maxAgeMs));
      }
    }
    this.#seen.set(name, fresh);
    return fresh;
  }

  /** True when the group keeps the node although the cloud lost it (Ready Unknown). */
  keeps(node: Node | undefined): boolean {
    return cloudReady(node) === "Unknown" && this.healthy(node);
  }
}

/** The warning for a stale annotation, naming it, its time and its age. */
export function staleWarning(node: string, age: AnnotationAge, maxAgeMs: number): string {
  const what = `node "${node}": annotation ${EDGE_HEALTH_ANNOTATION} ("healthy")`;
  const why = !age.value
    ? `has no ${age.field}`
    : Number.isNaN(age.ageMs)
    ? `has an unreadable ${age.field} "${age.value}"`
    : age.ageMs < 0
    ? `has ${age.field} ${age.value}, ${formatAge(-age.ageMs)} in the future (clock skew?)`
    : `is stale: ${age.field} ${age.value} is ${formatAge(age.ageMs)} old (max ${
      formatAge(maxAgeMs)
    })`;
  return `edgemesh: ${what} ${why}; treated as absent, standard eviction applies`;
}

/** "4m05s", "1h02m", "850ms". */
export function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
}

/** Answers "does the group keep this node (by name) although the cloud lost it?". */
type Keeper = (node: string) => boolean;

export function nodePatch(node: Node, alwaysReachable: boolean, judge: GroupJudge): Result {
  const warnings: string[] = [];
  const taints = node.spec?.taints;
  if (!Array.isArray(taints)) return { patch: [], warnings };
  const idx: number[] = [];
  taints.forEach((t, i) => {
    if (isObject(t) && t.key === UNREACHABLE_TAINT && t.effect === "NoExecute") idx.push(i);
  });
  if (idx.length === 0) return { patch: [], warnings };
  const name = node.metadata?.name ?? "?";
  let strip = alwaysReachable;
  if (!strip) {
    const ready = cloudReady(node);
    if (ready === undefined) {
      warnings.push(
        `edgemesh: node "${name}" has no Ready condition; the unreachable taint is kept`,
      );
    } else if (ready === "Unknown") {
      strip = judge.healthy(node);
    }
  }
  if (!strip) return { patch: [], warnings };
  // Descending indices: each removal leaves the earlier indices valid.
  return {
    patch: idx.reverse().map((i) => ({ op: "remove", path: `/spec/taints/${i}` })),
    warnings,
  };
}

export function endpointsPatch(ep: Endpoints, keep: Keeper): Result {
  const patch: JsonPatchOp[] = [];
  const subsets = ep.subsets;
  if (!Array.isArray(subsets)) return { patch, warnings: [] };
  subsets.forEach((s, i) => {
    if (!isObject(s) || !Array.isArray(s.notReadyAddresses)) return;
    const nr = s.notReadyAddresses;
    const moved: number[] = [];
    nr.forEach((a, j) => {
      if (isObject(a) && typeof a.nodeName === "string" && keep(a.nodeName)) moved.push(j);
    });
    if (moved.length === 0) return;
    if (!Array.isArray(s.addresses)) {
      patch.push({ op: "add", path: `/subsets/${i}/addresses`, value: moved.map((j) => nr[j]) });
    } else {
      for (const j of moved) {
        patch.push({ op: "add", path: `/subsets/${i}/addresses/-`, value: nr[j] });
      }
    }
    if (moved.length === nr.length) {
      patch.push({ op: "remove", path: `/subsets/${i}/notReadyAddresses` });
    } else {
      for (const j of [...moved].reverse()) {
        patch.push({ op: "remove", path: `/subsets/${i}/notReadyAddresses/${j}` });
      }
    }
  });
  return { patch, warnings: [] };
}

export function endpointSlicePatch(slice: EndpointSlice, keep: Keeper): Result {
  const patch: JsonPatchOp[] = [];
  const eps = slice.endpoints;
  if (!Array.isArray(eps)) return { patch, warnings: [] };
  eps.forEach((e, i) => {
    if (!isObject(e) || typeof e.nodeName !== "string" || !isObject(e.conditions)) return;
    // An absent `ready` already means ready; only an explicit false is changed.
    if (e.conditions.ready !== false || !keep(e.nodeName)) return;
    patch.push({ op: "replace", path: `/endpoints/${i}/conditions/ready`, value: true });
  });
  return { patch, warnings: [] };
}

function b64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export class AdmissionReviewer {
  readonly alwaysReachable: boolean;
  readonly maxAnnotationAgeMs: number;
  #deps: AdmissionDeps;
  #now: () => number;
  #log: Logger;
  #limiter: LogRateLimiter;
  #reviews;
  #stale;

  /** Throws AdmissionConfigError when the options conflict with the cluster's health config. */
  constructor(deps: AdmissionDeps, options: AdmissionOptions) {
    this.#deps = deps;
    this.alwaysReachable = options.alwaysReachable ?? false;
    this.maxAnnotationAgeMs = options.maxAnnotationAgeMs ?? ADMISSION_DEFAULTS.maxAnnotationAgeMs;
    const clock = deps.clock ?? { now: Date.now };
    this.#now = () => clock.now();
    checkAdmissionOptions(
      options,
      readGroupConfig(deps.store, deps.configNamespace ?? HEALTH_CONFIG_NAMESPACE),
    );
    this.#log = deps.logger.child("admission");
    this.#reviews = deps.metrics.counter(
      "edgemesh_admission_reviews_total",
      "Admission reviews by resource and result (patched, unchanged, malformed)",
      ["resource", "result"],
    );
    this.#stale = deps.metrics.counter(
      "edgemesh_admission_stale_annotations_total",
      "Healthy edge-health annotations ignored because they were not refreshed in time, by resource",
      ["resource"],
    );
    this.#limiter = new LogRateLimiter(1, 60_000, this.#now);
  }

  /** For endpoints: the store's Node of that name. */
  #keeper(judge: GroupJudge): Keeper {
    return (name) => judge.keeps(this.#deps.store.get("nodes", undefined, name));
  }

  /** Answers one AdmissionReview (already parsed JSON, or anything else). */
  review(input: unknown): AdmissionReviewOut {
    const out = (response: AdmissionResponse): AdmissionReviewOut => ({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response,
    });
    const req = isObject(input) ? input.request : undefined;
    if (!isObject(req)) {
      this.#reviews.inc({ resource: "", result: "malformed" });
      return out({
        uid: "",
        allowed: true,
        warnings: ["edgemesh: malformed AdmissionReview (no request); allowed"],
      });
    }
    const uid = typeof req.uid === "string" ? req.uid : "";
    const resource = isObject(req.resource) && typeof req.resource.resource === "string"
      ? req.resource.resource
      : "";
    const warn = (msg: string) => {
      this.#reviews.inc({ resource, result: "malformed" });
      return out({ uid, allowed: true, warnings: [`edgemesh: ${msg}; allowed`] });
    };
    if (!uid) return warn("AdmissionReview request has no uid");
    if (req.operation !== "UPDATE") {
      this.#reviews.inc({ resource, result: "unchanged" });
      return out({ uid, allowed: true });
    }
    const obj = req.object;
    if (!isObject(obj) || !isObject(obj.metadata)) {
      return warn(`${resource || "object"} without metadata`);
    }
    let r: Result;
    const judge = new GroupJudge(this.#now(), this.maxAnnotationAgeMs);
    switch (resource) {
      case "nodes":
        r = nodePatch(obj as unknown as Node, this.alwaysReachable, judge);
        break;
      case "endpoints":
        r = endpointsPatch(obj as unknown as Endpoints, this.#keeper(judge));
        break;
      case "endpointslices":
        r = endpointSlicePatch(obj as unknown as EndpointSlice, this.#keeper(judge));
        break;
      default:
        return warn(`resource "${resource}" is not handled`);
    }
    r.warnings.push(...judge.warnings);
    for (const [i, node] of judge.stale.entries()) {
      this.#stale.inc({ resource });
      if (this.#limiter.allow(node) !== undefined) {
        this.#log.warn("stale edge-health annotation ignored", {
          resource,
          node,
          warning: judge.warnings[i],
        });
      }
    }
    this.#reviews.inc({ resource, result: r.patch.length ? "patched" : "unchanged" });
    const response: AdmissionResponse = { uid, allowed: true };
    if (r.warnings.length) response.warnings = r.warnings;
    if (r.patch.length) {
      response.patchType = "JSONPatch";
      response.patch = b64(JSON.stringify(r.patch));
      this.#log.info("patched", {
        resource,
        namespace: (obj.metadata as { namespace?: string }).namespace,
        name: (obj.metadata as { name?: string }).name,
        ops: r.patch.length,
      });
    }
    return out(response);
  }
}
