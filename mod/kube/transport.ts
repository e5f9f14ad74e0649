/** The small HTTP surface the list/watch loop needs; implemented on client-node or fetch. */

export interface ListResult {
  items: unknown[];
  resourceVersion: string;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent {
  type: WatchEventType;
  object: unknown;
}

export interface WatchOptions {
  signal: AbortSignal;
  /** Server-side watch duration (`timeoutSeconds`); the loop re-watches afterwards. */
  timeoutSeconds?: number;
}

export interface KubeTransport {
  /** The server, for logs and status. */
  readonly server: string;
  /** GETs a collection. Rejects with KubeApiError on a non-2xx answer. */
  list(path: string, options: { signal: AbortSignal }): Promise<ListResult>;
  /**
   * Watches a collection from `resourceVersion` with bookmarks, calling `onEvent` per event.
   * Resolves when the stream ends (server closed it, timeout, or the signal aborted);
   * rejects with KubeApiError on a non-2xx answer, or with the network error.
   */
  watch(
    path: string,
    resourceVersion: string,
    onEvent: (event: WatchEvent) => void,
    options: WatchOptions,
  ): Promise<void>;
}

/** Reads a Kubernetes Status body for an error message, tolerating anything. */
export function statusReason(status: number, text: string): { reason: string; message: string } {
  try {
    const body = JSON.parse(text) as { reason?: unknown; message?: unknown };
    return {
      reason: typeof body.reason === "string" && body.reason ? body.reason : String(status),
      message: typeof body.message === "string" ? body.message : "",
    };
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return { reason: String(status), message: text.slice(0, 200) };
  }
}

/** Builds a collection URL with query parameters. */
export function collectionUrl(
  server: string,
  path: string,
  query: Record<string, string | undefined>,
): string {
  const url = new URL(server.replace(/\/+$/, "") + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}
