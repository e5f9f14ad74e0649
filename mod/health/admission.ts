/**
 * The admission webhook's logic (admission.k8s.io/v1, mutating, UPDATE of nodes, endpoints
 * and endpointslices). For a node whose cloud Ready is Unknown and whose group voted it
 * healthy (our `edgemesh.kubeedge.io/edge-health` annotation), it removes the
 * `node.kubernetes.io/unreachable:NoExecute` taint, moves its Endpoints `notReadyAddresses`
 * back to `addresses` and sets its EndpointSlice endpoints `conditions.ready` to true.
 * `alwaysReachable` strips that taint from every node (global no-eviction). Malformed input
 * gets an allowed response with a warning, never an exception.
 */

import type { Endpoints, EndpointSlice, Node, StoreReader } from "../kube/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import { edgeHealthOf } from "./annotations.ts";
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
}

export interface AdmissionDeps {
  /** Nodes (for endpoints) and the edge-health-config ConfigMap. */
  store: StoreReader;
  logger: Logger;
  metrics: Registry;
  /** Namespace of `edge-health-config` (flag `--namespace`). Default "kube-system". */
  configNamespace?: string;
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

/** Refuses global no-eviction together with unit checking. */
export function checkAdmissionOptions(options: AdmissionOptions, config: GroupConfig): void {
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

/** True when the group keeps this node although the cloud lost it. */
export function keptByGroup(node: Node | undefined): boolean {
  return cloudReady(node) === "Unknown" && edgeHealthOf(node)?.state === "healthy";
}

export function nodePatch(node: Node, alwaysReachable: boolean): Result {
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
      strip = edgeHealthOf(node)?.state === "healthy";
    }
  }
  if (!strip) return { patch: [], warnings };
  // Descending indices: each removal leaves the earlier indices valid.
  return {
    patch: idx.reverse().map((i) => ({ op: "remove", path: `/spec/taints/${i}` })),
    warnings,
  };
}

export function endpointsPatch(ep: Endpoints, keep: (node: string) => boolean): Result {
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

export function endpointSlicePatch(slice: EndpointSlice, keep: (node: string) => boolean): Result {
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
  #deps: AdmissionDeps;
  #log: Logger;
  #reviews;

  /** Throws AdmissionConfigError when the options conflict with the cluster's health config. */
  constructor(deps: AdmissionDeps, options: AdmissionOptions) {
    this.#deps = deps;
    this.alwaysReachable = options.alwaysReachable ?? false;
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
  }

  #keep = (name: string): boolean => keptByGroup(this.#deps.store.get("nodes", undefined, name));

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
    switch (resource) {
      case "nodes":
        r = nodePatch(obj as unknown as Node, this.alwaysReachable);
        break;
      case "endpoints":
        r = endpointsPatch(obj as unknown as Endpoints, this.#keep);
        break;
      case "endpointslices":
        r = endpointSlicePatch(obj as unknown as EndpointSlice, this.#keep);
        break;
      default:
        return warn(`resource "${resource}" is not handled`);
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
