/**
 * Writes Node annotations through the metaserver (or a plain-HTTP API server): a JSON merge
 * patch of `metadata.annotations`, where null removes a key. Bounded by a timeout.
 */

import { KubeApiError } from "./errors.ts";
import { statusReason } from "./transport.ts";

export interface NodeWriterOptions {
  /** Base URL, e.g. http://127.0.0.1:10550. */
  server: string;
  timeoutMs?: number;
}

export class NodeAnnotationWriter {
  constructor(private readonly options: NodeWriterOptions) {}

  async patchNodeAnnotations(
    node: string,
    annotations: Record<string, string | null>,
  ): Promise<void> {
    const url = `${this.options.server.replace(/\/+$/, "")}/api/v1/nodes/${
      encodeURIComponent(node)
    }`;
    const res = await fetch(url, {
      method: "PATCH",
      headers: { "content-type": "application/merge-patch+json", accept: "application/json" },
      body: JSON.stringify({ metadata: { annotations } }),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    if (!res.ok) {
      const { reason, message } = statusReason(res.status, text);
      throw new KubeApiError("PATCH", url, res.status, reason, message);
    }
  }
}
