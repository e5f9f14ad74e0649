/** JSON merge patch (RFC 7386) and JSON patch (RFC 6902) for the test metaserver. */

export class PatchError extends Error {
  override name = "PatchError";
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** RFC 7386: objects merge recursively, `null` deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): Json {
  if (!isObject(patch)) return structuredClone(patch) as Json;
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

interface Op {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  from?: string;
  value?: Json;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new PatchError(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(doc: Json, tokens: string[], path: string): { parent: Json; key: string } {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur)
      ? cur[Number(t)]
      : isObject(cur)
      ? cur[t]
      : undefined;
    if (next === undefined) throw new PatchError(`path ${JSON.stringify(path)} does not exist`);
    cur = next;
  }
  return { parent: cur, key: tokens[tokens.length - 1] };
}

function getAt(doc: Json, path: string): Json {
  let cur: Json | undefined = doc;
  for (const t of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(t)] : isObject(cur) ? cur[t] : undefined;
    if (cur === undefined) throw new PatchError(`path ${JSON.stringify(path)} does not exist`);
  }
  return cur;
}

function removeAt(doc: Json, path: string): Json {
  const { parent, key } = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!(i >= 0 && i < parent.length)) {
      throw new PatchError(`index ${key} out of range in ${path}`);
    }
    return parent.splice(i, 1)[0];
  }
  if (!isObject(parent) || !(key in parent)) {
    throw new PatchError(`path ${JSON.stringify(path)} does not exist`);
  }
  const v = parent[key];
  delete parent[key];
  return v;
}

function addAt(doc: Json, path: string, value: Json, replace: boolean): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return value;
  const { parent, key } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    const i = key === "-" ? parent.length : Number(key);
    if (!(i >= 0 && i <= parent.length)) {
      throw new PatchError(`index ${key} out of range in ${path}`);
    }
    if (replace) {
      if (i >= parent.length) throw new PatchError(`index ${key} out of range in ${path}`);
      parent[i] = value;
    } else parent.splice(i, 0, value);
  } else if (isObject(parent)) {
    if (replace && !(key in parent)) {
      throw new PatchError(`path ${JSON.stringify(path)} does not exist`);
    }
    parent[key] = value;
  } else throw new PatchError(`path ${JSON.stringify(path)} does not exist`);
  return doc;
}

/** RFC 6902. Throws PatchError when an operation fails (the whole patch is then refused). */
export function jsonPatch(target: unknown, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new PatchError("a JSON patch must be an array of operations");
  let doc = structuredClone(target) as Json;
  for (const raw of ops as Op[]) {
    switch (raw.op) {
      case "add":
        doc = addAt(doc, raw.path, structuredClone(raw.value ?? null), false);
        break;
      case "replace":
        doc = addAt(doc, raw.path, structuredClone(raw.value ?? null), true);
        break;
      case "remove":
        removeAt(doc, raw.path);
        break;
      case "move":
        doc = addAt(doc, raw.path, removeAt(doc, raw.from ?? ""), false);
        break;
      case "copy":
        doc = addAt(doc, raw.path, structuredClone(getAt(doc, raw.from ?? "")), false);
        break;
      case "test":
        if (JSON.stringify(getAt(doc, raw.path)) !== JSON.stringify(raw.value)) {
          throw new PatchError(`test failed at ${raw.path}`);
        }
        break;
      default:
        throw new PatchError(
          `unknown patch operation ${JSON.stringify((raw as { op?: unknown }).op)}`,
        );
    }
  }
  return doc;
}
