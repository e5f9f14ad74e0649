/**
 * Distributed node health (SuperEdge "edge-health", done better): each agent probes the
 * members of its group (NodeUnit) — directly, or through the tunnel's Dialer when a member
 * is not reachable directly — shares Ed25519-signed verdict digests with a bounded fan-out
 * (by the same path), votes by strict majority of the group's size, serves the result as a
 * `HealthView`, and one writer per group annotates Nodes, re-confirming each annotation
 * (`refreshedAt`) every `annotationRefreshMs`. The admission webhook (cloud side) keeps Pods
 * and endpoints of nodes the group votes healthy when the cloud lost them — only while that
 * vote is fresh (`maxAnnotationAgeMs`): a group that went dark entirely is evicted as usual.
 * @module
 */
export { Health } from "./health.ts";
export { EXCHANGE_PATH } from "./gossip.ts";
export type { ProbePath } from "./prober.ts";
export type { HealthClock, HealthDeps, HealthStatus, MemberStatus, PeerAddress } from "./health.ts";
export { effectiveFanout, HEALTH_DEFAULTS, resolveHealthOptions } from "./options.ts";
export type { HealthOptions, ResolvedHealthOptions } from "./options.ts";
export { generateIdentity, loadOrCreateIdentity, SignatureVerifier } from "./identity.ts";
export type { HealthIdentity, PeerKeyLookup } from "./identity.ts";
export { KeyPins } from "./key_pins.ts";
export {
  annotationAge,
  desiredAnnotations,
  EDGE_HEALTH_ANNOTATION,
  edgeHealthOf,
  isStale,
  NODE_UNHEALTH_ANNOTATION,
  parseEdgeHealth,
} from "./annotations.ts";
export type { AnnotationAge, AnnotationWriter, EdgeHealthAnnotation } from "./annotations.ts";
export {
  ALL_NODES_GROUP,
  cloudReady,
  groupOf,
  HEALTH_CONFIG_NAME,
  HEALTH_CONFIG_NAMESPACE,
  NODE_UNIT_LABEL_VALUE,
  readGroupConfig,
  unitsOf,
} from "./groups.ts";
export type { Group, GroupConfig } from "./groups.ts";
export { cloudEffect, majorityOf, vote, writerOf } from "./vote.ts";
export type { CloudEffect, MemberDecision, VoteInput, VoteResult } from "./vote.ts";
export {
  ADMISSION_DEFAULTS,
  AdmissionReviewer,
  checkAdmissionOptions,
  GroupJudge,
} from "./admission.ts";
export type { AdmissionDeps, AdmissionOptions, JsonPatchOp } from "./admission.ts";
export { admissionHandler, serveAdmission } from "./admission_server.ts";
export type { AdmissionServerOptions } from "./admission_server.ts";
export {
  AdmissionConfigError,
  HealthOptionsError,
  HealthStartError,
  HealthStateError,
  HealthTunnelError,
  WireFormatError,
} from "./errors.ts";
