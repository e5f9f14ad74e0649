/** What ClusterState needs from a source of objects (API server or manifest folder). */

import type { Kind } from "./types.ts";

export interface SourceStatus {
  /** "metaserver", "kubeconfig" or "manifests". */
  source: string;
  /** Server URL or folder. */
  target: string;
  /** Every kind has been read at least once. */
  synced: boolean;
  /** The source currently fails (the store keeps its last content). */
  degraded: boolean;
  lastError?: string;
  /** One line per kind for humans, e.g. "watching", "missing (404)", "backoff: …". */
  kinds: Partial<Record<Kind, string>>;
}

export interface ClusterSource {
  /** Begins feeding the store; returns at once. */
  start(signal: AbortSignal): void;
  /** Resolves after the first complete read of every kind. */
  synced(): Promise<void>;
  /** Stops loops and watchers; idempotent. */
  stop(): Promise<void>;
  status(): SourceStatus;
}
