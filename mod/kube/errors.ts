/** Named errors of the kube module: API failures, snapshot and manifest problems. */

/** An API request answered with a non-2xx status (or a watch ERROR event). */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly reason: string,
    detail = "",
    options?: ErrorOptions,
  ) {
    super(`${method} ${url} failed: ${status} ${reason}${detail ? `: ${detail}` : ""}`, options);
  }

  /** 410 Gone / Expired: the resourceVersion is too old, a re-list is needed. */
  get expired(): boolean {
    return this.status === 410;
  }

  /** 404: the resource (often a CRD) is not served. */
  get notFound(): boolean {
    return this.status === 404;
  }
}

/** A snapshot file that cannot be used (truncated, bad checksum, unknown version). */
export class SnapshotError extends Error {
  override name = "SnapshotError";
  constructor(readonly path: string, readonly problem: string, options?: ErrorOptions) {
    super(`Cannot use cluster snapshot "${path}": ${problem}`, options);
  }
}

/** A manifest file or document that cannot be read; line and column are 1-based. */
export class ManifestError extends Error {
  override name = "ManifestError";
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`${file}:${line}:${col}: ${problem}`, options);
  }
}

/** A cluster-state option that cannot work (missing server, unreadable manifest folder). */
export class ClusterStateConfigError extends Error {
  override name = "ClusterStateConfigError";
  constructor(readonly field: string, problem: string, options?: ErrorOptions) {
    super(`Invalid cluster state option ${field}: ${problem}`, options);
  }
}
