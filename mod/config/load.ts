/**
 * Loading: YAML text → raw values with positions, layers merged (defaults < cluster config <
 * local file < flags), decoded against the schema with every problem collected.
 */

import { isMap, isScalar, isSeq, LineCounter, parseDocument, stringify } from "yaml";
import type { Node as YamlNode } from "yaml";
import { ConfigError, type ConfigIssue, type Position } from "./errors.ts";
import { type Config, schema } from "./schema.ts";
import { type DecodeCtx, INVALID } from "./schema_dsl.ts";

/** One parsed layer: plain values plus the position of every field path in its file. */
export interface Layer {
  name: string;
  value: Record<string, unknown>;
  positions: Map<string, Position>;
  issues: ConfigIssue[];
}

/** Parses one YAML file. Syntax errors become issues with line:col; the value is then {}. */
export function parseLayer(file: string, text: string): Layer {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const issues: ConfigIssue[] = [];
  const positions = new Map<string, Position>();
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  for (const e of doc.errors) {
    issues.push({
      path: "",
      message: e.message.split("\n")[0],
      pos: at(e.pos[0]),
      severity: "error",
    });
  }
  if (issues.length > 0) return { name: file, value: {}, positions, issues };
  const walk = (node: unknown, path: string) => {
    if (isMap(node)) {
      for (const item of node.items) {
        const key = isScalar(item.key) ? String(item.key.value) : String(item.key);
        const p = path ? `${path}.${key}` : key;
        const range = (item.key as YamlNode | null)?.range ??
          (item.value as YamlNode | null)?.range;
        if (range) positions.set(p, at(range[0]));
        walk(item.value, p);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const p = `${path}[${i}]`;
        const range = (item as YamlNode | null)?.range;
        if (range) positions.set(p, at(range[0]));
        walk(item, p);
      });
    }
  };
  walk(doc.contents, "");
  const value = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (typeof value !== "object" || Array.isArray(value)) {
    issues.push({
      path: "",
      message: "the file must hold a YAML map at its top level",
      pos: at(0),
      severity: "error",
    });
    return { name: file, value: {}, positions, issues };
  }
  return { name: file, value: value as Record<string, unknown>, positions, issues };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Maps merge key by key; lists and scalars of the upper layer replace the lower ones. */
export function deepMerge(
  lower: Record<string, unknown>,
  upper: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...lower };
  for (const [k, v] of Object.entries(upper)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k])
      ? deepMerge(out[k] as Record<string, unknown>, v)
      : v;
  }
  return out;
}

export interface LoadResult {
  /** The frozen config, or undefined when there were errors. */
  config?: Readonly<Config>;
  issues: ConfigIssue[];
}

/** Merges layers (lowest first) over the embedded defaults and decodes them. */
export function resolveLayers(layers: readonly Layer[]): LoadResult {
  const issues: ConfigIssue[] = layers.flatMap((l) => l.issues);
  let raw: Record<string, unknown> = {};
  const positions = new Map<string, Position>();
  for (const l of layers) {
    raw = deepMerge(raw, l.value);
    for (const [p, pos] of l.positions) positions.set(p, pos);
  }
  const ctx: DecodeCtx = { issues, pos: (p) => positions.get(p), checks: true };
  const value = schema.decode(raw, "", ctx);
  issues.sort((a, b) =>
    (a.pos?.file ?? "").localeCompare(b.pos?.file ?? "") ||
    (a.pos?.line ?? 0) - (b.pos?.line ?? 0) ||
    (a.pos?.col ?? 0) - (b.pos?.col ?? 0)
  );
  const hasErrors = issues.some((i) => i.severity === "error");
  if (value === INVALID || hasErrors) return { issues };
  return { config: deepFreeze(value), issues };
}

/** Parses and decodes one file alone (for `config check`). */
export function checkText(file: string, text: string): LoadResult {
  return resolveLayers([parseLayer(file, text)]);
}

/** Like resolveLayers but throws a ConfigError listing every error. */
export function loadConfig(
  layers: readonly Layer[],
): { config: Readonly<Config>; warnings: ConfigIssue[] } {
  const r = resolveLayers(layers);
  if (!r.config) throw new ConfigError(r.issues);
  return { config: r.config, warnings: r.issues.filter((i) => i.severity === "warning") };
}

/** A layer from command-line flags (no positions: the "file" is the command line). */
export function flagLayer(values: Record<string, unknown>): Layer {
  const positions = new Map<string, Position>();
  const walk = (v: unknown, path: string) => {
    positions.set(path, { file: "<command line>", line: 1, col: 1 });
    if (isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    }
  };
  for (const [k, x] of Object.entries(values)) walk(x, k);
  return { name: "<command line>", value: values, positions, issues: [] };
}

/** The complete embedded default config. */
export function defaultConfig(): Readonly<Config> {
  return deepFreeze(schema.default);
}

/** The default config as YAML, with a header; it passes `config check`. */
export function defaultsYaml(): string {
  const header = "# edgemesh default configuration (edgemesh config defaults).\n" +
    '# Durations are strings like "30s"; EdgeMesh\'s unitless fields keep meaning seconds.\n';
  return header + stringify(schema.encode(schema.default), { lineWidth: 0 });
}

export function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** Field paths whose values differ between two configs (for hot reload decisions). */
export function diffPaths(a: unknown, b: unknown, path = ""): string[] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => diffPaths(a[k], b[k], path ? `${path}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path];
}
