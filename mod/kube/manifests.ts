/**
 * Reading Kubernetes manifests: multi-document YAML (or JSON) files into typed store
 * objects, with `file:line:col` on every problem. `List` kinds are expanded.
 */

import { LineCounter, parseAllDocuments } from "yaml";
import { ManifestError } from "./errors.ts";
import { kindOfManifest } from "./resources.ts";
import type { Kind, KindMap } from "./types.ts";
import { checkObject } from "./validate.ts";

export interface ManifestObject {
  kind: Kind;
  object: KindMap[Kind];
  file: string;
  line: number;
}

export interface ParsedManifest {
  objects: ManifestObject[];
  /** Objects skipped (malformed, or of kinds we do not keep); the rest of the file counts. */
  skipped: { error: ManifestError; ignoredKind?: string }[];
}

/**
 * Parses one file. Throws ManifestError on a YAML syntax error or a document that is not a
 * mapping (the whole file is then refused, so a half-written file never removes objects).
 */
export function parseManifest(file: string, text: string): ParsedManifest {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const pos = (offset: number) => lc.linePos(offset);
  if (!Array.isArray(docs)) return { objects: [], skipped: [] };
  const out: ParsedManifest = { objects: [], skipped: [] };
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) {
      const p = err.linePos?.[0] ?? pos(err.pos[0]);
      throw new ManifestError(file, p.line, p.col, err.message.split("\n")[0]);
    }
    const start = pos(doc.contents?.range?.[0] ?? doc.range[0]);
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue;
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new ManifestError(
        file,
        start.line,
        start.col,
        "a document must be a mapping (a Kubernetes object)",
      );
    }
    const obj = value as Record<string, unknown>;
    if (typeof obj.kind === "string" && obj.kind.endsWith("List") && Array.isArray(obj.items)) {
      for (const item of obj.items) add(out, file, start.line, item);
    } else {
      add(out, file, start.line, obj);
    }
  }
  return out;
}

function add(out: ParsedManifest, file: string, line: number, raw: unknown): void {
  const o = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const kind = kindOfManifest(o.apiVersion, o.kind);
  if (!kind) {
    const what = `${String(o.apiVersion)}/${String(o.kind)}`;
    out.skipped.push({
      error: new ManifestError(file, line, 1, `kind ${what} is not kept, ignored`),
      ignoredKind: what,
    });
    return;
  }
  const checked = checkObject(kind, o, "default");
  if (!checked.ok) {
    const e = checked.error;
    out.skipped.push({
      error: new ManifestError(
        file,
        line,
        1,
        `malformed ${kind} ${e.namespace ? `${e.namespace}/` : ""}${
          e.name ?? "?"
        }: ${e.field}: ${e.problem}`,
      ),
    });
    return;
  }
  out.objects.push({ kind, object: checked.object, file, line });
}
