/**
 * The HTTP face of the test metaserver: discovery, list (JSON or Table), watch streams with
 * bookmarks and 410, GET/POST/PUT/PATCH/DELETE, in Kubernetes' paths and Status errors.
 */

import { jsonPatch, mergePatch, PatchError } from "./metaserver_patch.ts";
import {
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersionOf,
  apiVersions,
  findResource,
  groupVersions,
  type ResourceDef,
  statusObject,
  VERSION_INFO,
} from "./metaserver_resources.ts";
import { fieldSelector, labelSelector, type Matcher, SelectorError } from "./metaserver_select.ts";
import type { MetaState, Obj, WatchSink } from "./metaserver_state.ts";
import { tableFor, wantsTable } from "./metaserver_table.ts";

/** What the HTTP layer needs from the server around it. */
export interface HttpContext {
  state: MetaState;
  host: string;
  missingGroups: ReadonlySet<string>;
  forbidden: ReadonlySet<string>;
  goneAs: "event" | "status";
  bookmarkIntervalMs: number;
  stopping: () => boolean;
  count: (verb: string, plural: string) => void;
}

interface Target {
  def: ResourceDef;
  version: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

const encoder = new TextEncoder();

/** Answers one API request. */
export async function handleApi(ctx: HttpContext, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const segs = url.pathname.split("/").filter((s) => s.length > 0).map(decodeURIComponent);
  try {
    return await route(ctx, req, url, segs);
  } catch (err) {
    if (err instanceof SelectorError || err instanceof PatchError || err instanceof SyntaxError) {
      return json(statusObject(400, "BadRequest", err.message), 400);
    }
    throw err;
  }
}

function route(
  ctx: HttpContext,
  req: Request,
  url: URL,
  segs: string[],
): Promise<Response> | Response {
  if (segs[0] === "version" && segs.length === 1) return json(VERSION_INFO);
  if (segs[0] === "api") {
    if (segs.length === 1) return json(apiVersions(ctx.host));
    if (segs[1] !== "v1") return notFound(url.pathname);
    if (segs.length === 2) return json(apiResourceList("", "v1"));
    return resource(ctx, req, url, "", "v1", segs.slice(2));
  }
  if (segs[0] === "apis") {
    if (segs.length === 1) return json(apiGroupList(ctx.missingGroups));
    const group = segs[1];
    const versions = groupVersions(group);
    if (!versions || ctx.missingGroups.has(group)) {
      const plural = segs[3] === "namespaces" ? segs[5] : segs[3];
      if (plural && req.method === "GET") {
        ctx.count(url.searchParams.get("watch") ? "watch" : "list", plural);
      }
      return notFound(url.pathname);
    }
    if (segs.length === 2) return json(apiGroup(group, versions));
    if (!versions.includes(segs[2])) return notFound(url.pathname);
    if (segs.length === 3) return json(apiResourceList(group, segs[2]));
    return resource(ctx, req, url, group, segs[2], segs.slice(3));
  }
  return notFound(url.pathname);
}

function resource(
  ctx: HttpContext,
  req: Request,
  url: URL,
  group: string,
  version: string,
  rest: string[],
): Promise<Response> | Response {
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const def = findResource(group, version, rest[0]);
  if (!def || rest.length > 3 || (namespace && !def.namespaced)) return notFound(url.pathname);
  const t: Target = { def, version, namespace, name: rest[1], subresource: rest[2] };
  if (t.subresource && t.subresource !== "status") return notFound(url.pathname);
  const watching = url.searchParams.get("watch") === "true" ||
    url.searchParams.get("watch") === "1";
  const verb = req.method === "GET"
    ? (t.name ? "get" : watching ? "watch" : "list")
    : ({ POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" } as Record<
      string,
      string
    >)[
      req.method
    ] ?? req.method.toLowerCase();
  ctx.count(verb, def.plural);
  if (ctx.forbidden.has(def.plural)) {
    const msg =
      `${def.plural} is forbidden: User "system:anonymous" cannot ${verb} resource "${def.plural}"`;
    return json(statusObject(403, "Forbidden", msg), 403);
  }
  switch (verb) {
    case "get":
      return getOne(ctx, req, t);
    case "watch":
      return watch(ctx, url, t);
    case "list":
      return list(ctx, req, url, t);
    case "create":
      return t.name ? methodNotAllowed() : write(ctx, req, t, "create");
    case "update":
      return t.name ? write(ctx, req, t, "update") : methodNotAllowed();
    case "patch":
      return t.name ? patch(ctx, req, t) : methodNotAllowed();
    case "delete": {
      if (!t.name) return methodNotAllowed();
      const old = ctx.state.objects(def).get(nameKey(t));
      if (!old) return notFoundObject(t);
      ctx.state.commit(def, "DELETED", old);
      return json(ctx.state.view(old, def, version));
    }
  }
  return methodNotAllowed();
}

function matcher(url: URL): Matcher {
  const ls = labelSelector(url.searchParams.get("labelSelector"));
  const fs = fieldSelector(url.searchParams.get("fieldSelector"));
  return (o) => ls(o) && fs(o);
}

function getOne(ctx: HttpContext, req: Request, t: Target): Response {
  const obj = ctx.state.objects(t.def).get(nameKey(t));
  if (!obj) return notFoundObject(t);
  if (wantsTable(req)) return json(tableFor(t.def, [obj], String(ctx.state.resourceVersion)));
  return json(ctx.state.view(obj, t.def, t.version));
}

function list(ctx: HttpContext, req: Request, url: URL, t: Target): Response {
  const items = ctx.state.select(t.def, t.namespace, matcher(url));
  const rv = String(ctx.state.resourceVersion);
  if (wantsTable(req)) return json(tableFor(t.def, items, rv));
  // As kube-apiserver: list items carry no apiVersion/kind; the list does.
  return json({
    kind: `${t.def.kind}List`,
    apiVersion: apiVersionOf(t.def.group, t.version),
    metadata: { resourceVersion: rv },
    items: items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest),
  });
}

function watch(ctx: HttpContext, url: URL, t: Target): Response {
  const rvParam = url.searchParams.get("resourceVersion") ?? "";
  const from = rvParam === "" || rvParam === "0" ? undefined : Number(rvParam);
  if (from !== undefined && !Number.isInteger(from)) {
    const msg = `invalid resourceVersion ${JSON.stringify(rvParam)}`;
    return json(statusObject(400, "BadRequest", msg), 400);
  }
  const match = matcher(url);
  const expired = () =>
    statusObject(
      410,
      "Expired",
      `too old resource version: ${from} (${ctx.state.compactedResourceVersion})`,
    );
  if (from !== undefined && from < ctx.state.compactedResourceVersion && ctx.goneAs === "status") {
    return json(expired(), 410);
  }
  const bookmarks = url.searchParams.get("allowWatchBookmarks") === "true";
  const timeoutS = Number(url.searchParams.get("timeoutSeconds") ?? "0");
  let sink: WatchSink | undefined;
  const body = new ReadableStream<Uint8Array>({
    start: (controller) => {
      const timers: ReturnType<typeof setTimeout>[] = [];
      let closed = false;
      const w: WatchSink = {
        def: t.def,
        version: t.version,
        namespace: t.namespace,
        match,
        send: (event) => {
          if (closed) return false;
          try {
            controller.enqueue(encoder.encode(JSON.stringify(event) + "\n"));
            return true;
          } catch (err) {
            // The client cancelled between its cancel and our bookkeeping.
            if (err instanceof TypeError) return false;
            throw err;
          }
        },
        close: () => {
          if (closed) return;
          closed = true;
          for (const timer of timers) clearTimeout(timer);
          try {
            controller.close();
          } catch (err) {
            // Already closed or cancelled by the client.
            if (!(err instanceof TypeError)) throw err;
          }
        },
      };
      sink = w;
      if (ctx.state.openWatch(w, from) === "gone") {
        w.send({ type: "ERROR", object: expired() });
        w.close();
        return;
      }
      if (bookmarks) {
        timers.push(setInterval(() => {
          w.send({
            type: "BOOKMARK",
            object: {
              kind: t.def.kind,
              apiVersion: apiVersionOf(t.def.group, t.version),
              metadata: { resourceVersion: String(ctx.state.resourceVersion) },
            },
          });
        }, ctx.bookmarkIntervalMs));
      }
      if (timeoutS > 0) timers.push(setTimeout(() => ctx.state.closeWatch(w), timeoutS * 1000));
      if (ctx.stopping()) ctx.state.closeWatch(w);
    },
    cancel: () => {
      if (sink) ctx.state.closeWatch(sink);
    },
  });
  return new Response(body, {
    headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
  });
}

async function write(
  ctx: HttpContext,
  req: Request,
  t: Target,
  verb: "create" | "update",
): Promise<Response> {
  const body = await req.json() as Obj;
  if (typeof body?.metadata !== "object" || body.metadata === null) {
    return json(statusObject(422, "Invalid", "metadata is required"), 422);
  }
  if (verb === "create" && !body.metadata.name && body.metadata.generateName) {
    body.metadata.name = `${body.metadata.generateName}${crypto.randomUUID().slice(0, 5)}`;
  }
  if (typeof body.metadata.name !== "string" || body.metadata.name === "") {
    return json(statusObject(422, "Invalid", "metadata.name: Required value"), 422);
  }
  if (t.name && body.metadata.name !== t.name) {
    const msg = "the name of the object does not match the name in the URL";
    return json(statusObject(400, "BadRequest", msg), 400);
  }
  if (t.def.namespaced) {
    body.metadata.namespace = t.namespace ?? body.metadata.namespace ?? "default";
  }
  const target = { ...t, namespace: body.metadata.namespace, name: body.metadata.name };
  const existing = ctx.state.objects(t.def).get(nameKey(target));
  if (verb === "create" && existing) {
    const msg = `${t.def.plural} "${body.metadata.name}" already exists`;
    return json(statusObject(409, "AlreadyExists", msg), 409);
  }
  if (verb === "update") {
    if (!existing) return notFoundObject(target);
    const want = body.metadata.resourceVersion;
    if (want && want !== existing.metadata.resourceVersion) {
      const msg = "the object has been modified; please apply your changes to the latest version";
      return json(statusObject(409, "Conflict", msg), 409);
    }
  }
  const stored = ctx.state.commit(t.def, existing ? "MODIFIED" : "ADDED", body);
  return json(ctx.state.view(stored, t.def, t.version), verb === "create" ? 201 : 200);
}

async function patch(ctx: HttpContext, req: Request, t: Target): Promise<Response> {
  const existing = ctx.state.objects(t.def).get(nameKey(t));
  if (!existing) return notFoundObject(t);
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim();
  const body = await req.json();
  let next: Obj;
  if (type === "application/json-patch+json") {
    next = jsonPatch(existing, body) as Obj;
  } else if (
    type === "application/merge-patch+json" || type === "application/strategic-merge-patch+json"
  ) {
    // Strategic merge is treated as a merge patch: enough for labels and annotations.
    next = mergePatch(existing, body) as Obj;
  } else {
    const msg = `unsupported patch type ${JSON.stringify(type)}`;
    return json(statusObject(415, "UnsupportedMediaType", msg), 415);
  }
  if (next?.metadata?.name !== existing.metadata.name) {
    return json(statusObject(422, "Invalid", "metadata.name cannot be changed by a patch"), 422);
  }
  if (t.def.namespaced) next.metadata.namespace = existing.metadata.namespace;
  const stored = ctx.state.commit(t.def, "MODIFIED", next);
  return json(ctx.state.view(stored, t.def, t.version));
}

function nameKey(t: { def: ResourceDef; namespace?: string; name?: string }): string {
  return t.def.namespaced ? `${t.namespace ?? "default"}/${t.name}` : t.name!;
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function notFound(path: string): Response {
  const msg = `the server could not find the requested resource (${path})`;
  return json(statusObject(404, "NotFound", msg), 404);
}

function notFoundObject(t: Target): Response {
  const what = t.def.group ? `${t.def.plural}.${t.def.group}` : t.def.plural;
  return json(statusObject(404, "NotFound", `${what} "${t.name}" not found`), 404);
}

function methodNotAllowed(): Response {
  const msg = "the server does not allow this method on the requested resource";
  return json(statusObject(405, "MethodNotAllowed", msg), 405);
}
