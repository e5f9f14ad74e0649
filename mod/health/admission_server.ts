/** HTTPS server for the admission webhook (Deno.serve with a PEM certificate and key). */

import type { AdmissionReviewer } from "./admission.ts";

const MAX_REVIEW_BYTES = 6 * 1024 * 1024;

export interface AdmissionServerOptions {
  hostname: string;
  /** 0 picks a free port (read it back from the server's `addr`). */
  port: number;
  /** PEM certificate chain and private key (contents, not paths). */
  cert: string;
  key: string;
  signal?: AbortSignal;
  onListen?: (addr: Deno.NetAddr) => void;
}

/**
 * The HTTP handler: POST an AdmissionReview to any path (the webhook config uses
 * `/mutate`); GET /healthz answers "ok". A body that is not JSON gets an allowed response
 * with a warning.
 */
export function admissionHandler(reviewer: AdmissionReviewer): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    if (req.method === "GET" && url.pathname === "/healthz") return new Response("ok");
    if (req.method !== "POST") return new Response("method not allowed", { status: 405 });
    if (Number(req.headers.get("content-length") ?? "0") > MAX_REVIEW_BYTES) {
      return new Response("request too large", { status: 413 });
    }
    const text = await req.text();
    let input: unknown;
    try {
      input = JSON.parse(text);
    } catch {
      // Not JSON: still answer allowed so a broken client never blocks node updates.
      input = undefined;
    }
    return Response.json(reviewer.review(input));
  };
}

/** Serves the webhook over HTTPS until `signal` aborts. */
export function serveAdmission(
  reviewer: AdmissionReviewer,
  options: AdmissionServerOptions,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    cert: options.cert,
    key: options.key,
    signal: options.signal,
    onListen: options.onListen ?? (() => {}),
  }, admissionHandler(reviewer));
}
