/**
 * A small declarative schema: each field knows its default, how to decode a raw YAML value
 * (reporting problems with a field path and position), and how to print itself back.
 * Types are inferred from the schema, so defaults and types live in one place.
 */

import type { ConfigIssue, Position } from "./errors.ts";
import { formatDuration, parseDuration } from "./duration.ts";

export interface DecodeCtx {
  issues: ConfigIssue[];
  pos(path: string): Position | undefined;
  /** When false, semantic checks are skipped (inside a disabled module). */
  checks: boolean;
}

export const INVALID: unique symbol = Symbol("invalid");
type Decoded<T> = T | typeof INVALID;

export abstract class Field<T> {
  constructor(readonly doc: string) {}
  abstract readonly default: T;
  abstract decode(raw: unknown, path: string, ctx: DecodeCtx): Decoded<T>;
  /** The YAML-side form of a value (durations back to strings). */
  encode(value: T): unknown {
    return value;
  }
  /** Fields accepted for compatibility but not implemented. */
  get ignored(): boolean {
    return false;
  }
}

export type Infer<F> = F extends Field<infer T> ? T : never;
type Check<T> = (v: T) => string | undefined;

export function report(
  ctx: DecodeCtx,
  path: string,
  message: string,
  severity: "error" | "warning" = "error",
): void {
  ctx.issues.push({ path, message, pos: ctx.pos(path) ?? nearestPos(ctx, path), severity });
}

function nearestPos(ctx: DecodeCtx, path: string): Position | undefined {
  let p = path;
  while (p) {
    const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
    if (cut <= 0) break;
    p = p.slice(0, cut);
    const pos = ctx.pos(p);
    if (pos) return pos;
  }
  return undefined;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  return `${typeof v} ${JSON.stringify(v)}`;
}

function runChecks<T>(ctx: DecodeCtx, path: string, v: T, checks: readonly Check<T>[]): Decoded<T> {
  if (!ctx.checks) return v;
  for (const c of checks) {
    const msg = c(v);
    if (msg) {
      report(ctx, path, msg);
      return INVALID;
    }
  }
  return v;
}

class StrField<T extends string> extends Field<T> {
  readonly default: T;
  constructor(
    def: T,
    doc: string,
    readonly values?: readonly T[],
    readonly checks: Check<T>[] = [],
  ) {
    super(doc);
    this.default = def;
  }
  decode(raw: unknown, path: string, ctx: DecodeCtx): Decoded<T> {
    if (typeof raw === "number" && !this.values) raw = String(raw);
    if (typeof raw !== "string") {
      report(ctx, path, `must be a string, got ${typeName(raw)}`);
      return INVALID;
    }
    if (this.values && !this.values.includes(raw as T)) {
      report(
        ctx,
        path,
        `must be one of ${this.values.map((v) => JSON.stringify(v)).join(", ")}, got ${
          JSON.stringify(raw)
        }`,
      );
      return INVALID;
    }
    return runChecks(ctx, path, raw as T, this.checks);
  }
}

class NumField extends Field<number> {
  readonly default: number;
  constructor(
    def: number,
    doc: string,
    readonly opts: { min?: number; max?: number; integer?: boolean },
    readonly checks: Check<number>[] = [],
  ) {
    super(doc);
    this.default = def;
  }
  decode(raw: unknown, path: string, ctx: DecodeCtx): Decoded<number> {
    if (typeof raw !== "number" || !Number.isFinite(raw)) {
      report(ctx, path, `must be a number, got ${typeName(raw)}`);
      return INVALID;
    }
    if (this.opts.integer && !Number.isInteger(raw)) {
      report(ctx, path, `must be a whole number, got ${raw}`);
      return INVALID;
    }
    if (this.opts.min !== undefined && raw < this.opts.min) {
      report(ctx, path, `must be at least ${this.opts.min}, got ${raw}`);
      return INVALID;
    }
    if (this.opts.max !== undefined && raw > this.opts.max) {
      report(ctx, path, `must be at most ${this.opts.max}, got ${raw}`);
      return INVALID;
    }
    return runChecks(ctx, path, raw, this.checks);
  }
}

class BoolField extends Field<boolean> {
  readonly default: boolean;
  constructor(def: boolean, doc: string) {
    super(doc);
    this.default = def;
  }
  decode(raw: unknown, path: string, ctx: DecodeCtx): Decoded<boolean> {
    if (typeof raw !== "boolean") {
      report(ctx, path, `must be true or false, got ${typeName(raw)}`);
      return INVALID;
    }
    return raw;
  }
}

/** A duration in milliseconds. Strings like "30s"; bare integers mean seconds when allowed. */
class DurField extends Field<number> {
  readonly default: number;
  constructor(
    def: string,
    doc: string,
    readonly opts: { unitlessSeconds?: boolean; minMs?: number },
  ) {
    super(doc);
    this.default = parseDuration(def)!;
  }
  decode(raw: unknown, path: string, ctx: DecodeCtx): Decoded<number> {
    let ms: number | undefined;
    if (typeof raw === "number" && Number.isInteger(raw) && raw >= 0 && this.opts.unitlessSeconds) {
      ms = raw * 1000;
    } else if (typeof raw === "string") ms = parseDuration(raw);
    if (ms === undefined) {
      const hint = this.opts.unitlessSeconds ? ` or a whole number of seconds` : "";
      report(
        ctx,
        path,
        `must be a duration like "30s", "2m" or "500ms"${hint}, got ${typeName(raw)}`,
      );
      return INVALID;
    }
    if (this.opts.minMs !== undefined && ms < this.opts.minMs && ctx.checks) {
      report(
        ctx,
        path,
        `must be at least ${formatDuration(this.opts.minMs)}, got ${formatDuration(ms)}`,
      );
      return INVALID;
    }
    return ms;
  }
  override encode(value: number): unknown {
    return this.opts.unitlessSeconds && value % 1000 === 0 ? value / 1000 : formatDuration(value);
  }
}

class ListField<T> extends Field<T[]> {
  readonly default: T[];
  constructor(readonly of: Field<T>, def: T[], doc: string, readonly acceptScalar: boolean) {
    super(doc);
    this.default = def;
  }
  decode(raw: unknown, path: string, ctx: DecodeCtx): Decoded<T[]> {
    if (raw === null) return [];
    if (!Array.isArray(raw)) {
      if (this.acceptScalar && raw !== undefined && typeof raw !== "object") {
        const v = this.of.decode(raw, path, ctx);
        return v === INVALID ? INVALID : [v];
      }
      report(ctx, path, `must be a list, got ${typeName(raw)}`);
      return INVALID;
    }
    const out: T[] = [];
    let bad = false;
    raw.forEach((item, i) => {
      const v = this.of.decode(item, `${path}[${i}]`, ctx);
      if (v === INVALID) bad = true;
      else out.push(v);
    });
    return bad ? INVALID : out;
  }
  override encode(value: T[]): unknown {
    return value.map((v) => this.of.encode(v));
  }
}

class IgnoredField extends Field<undefined> {
  readonly default = undefined;
  constructor(doc: string) {
    super(doc);
  }
  decode(_raw: unknown, path: string, ctx: DecodeCtx): Decoded<undefined> {
    report(
      ctx,
      path,
      `accepted for EdgeMesh compatibility but not implemented; ignored`,
      "warning",
    );
    return undefined;
  }
  override get ignored(): boolean {
    return true;
  }
}

type Shape = Record<string, Field<unknown>>;
export type ObjOf<S extends Shape> = {
  [K in keyof S as S[K] extends IgnoredField ? never : K]: Infer<S[K]>;
};

export class ObjField<S extends Shape> extends Field<ObjOf<S>> {
  constructor(
    readonly shape: S,
    doc: string,
    readonly checks: ((v: ObjOf<S>, path: string, ctx: DecodeCtx) => void)[] = [],
  ) {
    super(doc);
  }
  get default(): ObjOf<S> {
    const out: Record<string, unknown> = {};
    for (const [k, f] of Object.entries(this.shape)) {
      if (!f.ignored) out[k] = structuredClone(f.default);
    }
    return out as ObjOf<S>;
  }
  decode(raw: unknown, path: string, ctx: DecodeCtx): Decoded<ObjOf<S>> {
    if (raw === null || raw === undefined) raw = {};
    if (typeof raw !== "object" || Array.isArray(raw)) {
      report(ctx, path, `must be a map, got ${typeName(raw)}`);
      return INVALID;
    }
    const rec = raw as Record<string, unknown>;
    const known = Object.keys(this.shape);
    for (const k of Object.keys(rec)) {
      if (k in this.shape) continue;
      const hint = didYouMean(k, known);
      report(ctx, join(path, k), `unknown key${hint ? `; did you mean "${hint}"?` : ""}`);
    }
    // A module with `enable: false` is not checked beyond its structure.
    const enableField = this.shape.enable;
    const disabled = enableField instanceof BoolField &&
      (rec.enable ?? enableField.default) === false;
    const inner: DecodeCtx = disabled ? { ...ctx, checks: false } : ctx;
    const out: Record<string, unknown> = {};
    let bad = false;
    for (const [k, f] of Object.entries(this.shape)) {
      const p = join(path, k);
      if (
        !(k in rec) || (rec[k] === null && !(f instanceof ListField) && !(f instanceof ObjField))
      ) {
        if (!f.ignored) out[k] = structuredClone(f.default);
        continue;
      }
      const v = f.decode(rec[k], p, inner);
      if (v === INVALID) bad = true;
      else if (!f.ignored) out[k] = v;
    }
    if (bad) return INVALID;
    const value = out as ObjOf<S>;
    if (inner.checks) { for (const c of this.checks) c(value, path, inner); }
    return value;
  }
  override encode(value: ObjOf<S>): unknown {
    const out: Record<string, unknown> = {};
    for (const [k, f] of Object.entries(this.shape)) {
      if (f.ignored) continue;
      out[k] = f.encode((value as Record<string, unknown>)[k]);
    }
    return out;
  }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : distance(key, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** Builders. */
export const t = {
  str: <T extends string = string>(def: T, doc: string, ...checks: Check<string>[]) =>
    new StrField<string>(def, doc, undefined, checks) as unknown as Field<string>,
  oneOf: <T extends string>(values: readonly T[], def: T, doc: string) =>
    new StrField<T>(def, doc, values),
  int: (
    def: number,
    doc: string,
    opts: { min?: number; max?: number } = {},
    ...checks: Check<number>[]
  ) => new NumField(def, doc, { ...opts, integer: true }, checks),
  num: (def: number, doc: string, opts: { min?: number; max?: number } = {}) =>
    new NumField(def, doc, opts),
  bool: (def: boolean, doc: string) => new BoolField(def, doc),
  dur: (def: string, doc: string, opts: { unitlessSeconds?: boolean; minMs?: number } = {}) =>
    new DurField(def, doc, opts),
  list: <T>(of: Field<T>, doc: string, def: T[] = []) => new ListField<T>(of, def, doc, false),
  /** A list that also accepts a single scalar (`listenAddress: 1.2.3.4`). */
  listOrOne: <T>(of: Field<T>, doc: string, def: T[] = []) => new ListField<T>(of, def, doc, true),
  obj: <S extends Shape>(
    shape: S,
    doc = "",
    ...checks: ((v: ObjOf<S>, path: string, ctx: DecodeCtx) => void)[]
  ) => new ObjField<S>(shape, doc, checks),
  ignored: (doc: string) => new IgnoredField(doc),
};
