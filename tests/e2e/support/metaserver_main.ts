/**
 * `deno run --allow-net --allow-read=FILE metaserver_main.ts --cluster FILE [--port 10550]`
 *
 * Serves the cluster in FILE (YAML or JSON: one or more documents, each an object, a list of
 * objects or a `{items: […]}` list) with `TestMetaServer` on `127.0.0.1:PORT` inside the
 * namespace it runs in, and takes changes as JSON lines on stdin — the test process cannot
 * reach a namespace's loopback, but it owns this process's pipes:
 *
 * `{"id":1,"op":"apply","object":{…}}` → `{"id":1,"ok":true,"result":…}` on stdout.
 * Ops: apply, add, update (object), delete (ref), get (apiVersion, kind, namespace, name),
 * stall (on), dropWatches, compactHistory, setGroupAvailable (group, available),
 * requestCount (verb, plural), state (resourceVersion, watchCount).
 * Prints `{"ready":true,"url":…,"objects":N}` once listening.
 */

import { parseAllDocuments } from "yaml";
import { TestMetaServer } from "../../support/metaserver.ts";

// deno-lint-ignore no-explicit-any
type Obj = any;

/** The objects of a cluster file. */
export function parseCluster(text: string): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw doc.errors[0];
    const v = doc.toJS();
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) out.push(...v);
    else if (Array.isArray(v.items) && !v.metadata?.name) out.push(...v.items);
    else out.push(v);
  }
  return out;
}

/** Applies one control request to the server and returns its result. */
export function control(ms: TestMetaServer, req: Obj): unknown {
  switch (req.op) {
    case "apply":
      return ms.apply(req.object);
    case "add":
      return ms.add(req.object);
    case "update":
      return ms.update(req.object);
    case "delete":
      return ms.delete(req.ref);
    case "get":
      return ms.get(req.apiVersion, req.kind, req.namespace, req.name) ?? null;
    case "stall":
      return ms.stall(Boolean(req.on)), null;
    case "dropWatches":
      return ms.dropWatches();
    case "compactHistory":
      return ms.compactHistory(), null;
    case "setGroupAvailable":
      return ms.setGroupAvailable(req.group, Boolean(req.available)), null;
    case "requestCount":
      return ms.requestCount(req.verb, req.plural);
    case "state":
      return { resourceVersion: ms.resourceVersion, watchCount: ms.watchCount };
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main) {
  const file = flag("cluster");
  const objects = file ? parseCluster(await Deno.readTextFile(file)) : [];
  const ms = await TestMetaServer.start({ port: Number(flag("port") ?? "10550"), objects });
  const stop = () => ms.stop().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  console.log(JSON.stringify({ ready: true, url: ms.url, objects: objects.length }));
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) !== -1) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      let id: unknown = null;
      try {
        const req = JSON.parse(line);
        id = req.id ?? null;
        console.log(JSON.stringify({ id, ok: true, result: control(ms, req) ?? null }));
      } catch (err) {
        console.log(
          JSON.stringify({
            id,
            ok: false,
            error: err instanceof Error ? err.message : String(err),
          }),
        );
      }
    }
  }
  // stdin closed: the test process is gone or done with us.
  await ms.stop();
}
