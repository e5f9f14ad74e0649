/** Structured JSON-lines logging, injected (never global). */

export type LogLevel = "error" | "warn" | "info" | "debug";

export const LOG_LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug"];

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Fields attached to a log line. Values must be JSON-serialisable; errors are flattened. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** True when lines of this level are written (to skip building costly fields). */
  enabled(level: LogLevel): boolean;
  /** A logger for a sub-component ("dns", "proxy.tcp"), sharing level and sink. */
  child(component: string, fields?: LogFields): Logger;
}

/** Where lines go. The default writes to stdout; tests collect them. */
export type LogSink = (line: string) => void;

/** Mutable level shared by a logger and all its children, so hot reload can change it. */
export class LogLevelRef {
  #level: LogLevel;
  constructor(level: LogLevel = "info") {
    this.#level = level;
  }
  get level(): LogLevel {
    return this.#level;
  }
  set level(level: LogLevel) {
    this.#level = level;
  }
}

export interface LoggerOptions {
  level?: LogLevelRef | LogLevel;
  sink?: LogSink;
  component?: string;
  fields?: LogFields;
  /** Clock for the `ts` field; defaults to `Date.now`. */
  now?: () => number;
}

const encoder = new TextEncoder();
const stdoutSink: LogSink = (line) => {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
};

function flatten(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (value.cause !== undefined) out.cause = flatten(value.cause);
    return out;
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

class JsonLogger implements Logger {
  constructor(
    readonly levelRef: LogLevelRef,
    readonly sink: LogSink,
    readonly component: string,
    readonly fields: LogFields,
    readonly now: () => number,
  ) {}

  enabled(level: LogLevel): boolean {
    return RANK[level] <= RANK[this.levelRef.level];
  }

  #write(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const line: Record<string, unknown> = {
      ts: new Date(this.now()).toISOString(),
      level,
      component: this.component,
      msg,
    };
    for (const [k, v] of Object.entries(this.fields)) line[k] = flatten(v);
    if (fields) { for (const [k, v] of Object.entries(fields)) line[k] = flatten(v); }
    let text: string;
    try {
      text = JSON.stringify(line);
    } catch (err) {
      text = JSON.stringify({
        ts: line.ts,
        level,
        component: this.component,
        msg,
        logError: String(err),
      });
    }
    this.sink(text);
  }

  error(msg: string, fields?: LogFields) {
    this.#write("error", msg, fields);
  }
  warn(msg: string, fields?: LogFields) {
    this.#write("warn", msg, fields);
  }
  info(msg: string, fields?: LogFields) {
    this.#write("info", msg, fields);
  }
  debug(msg: string, fields?: LogFields) {
    this.#write("debug", msg, fields);
  }

  child(component: string, fields?: LogFields): Logger {
    const name = this.component ? `${this.component}.${component}` : component;
    return new JsonLogger(this.levelRef, this.sink, name, { ...this.fields, ...fields }, this.now);
  }
}

/** Creates the root logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level instanceof LogLevelRef
    ? options.level
    : new LogLevelRef(options.level ?? "info");
  return new JsonLogger(
    level,
    options.sink ?? stdoutSink,
    options.component ?? "",
    options.fields ?? {},
    options.now ?? Date.now,
  );
}

/** A logger that drops everything (for unit tests that do not inspect logs). */
export function nullLogger(): Logger {
  return createLogger({ sink: () => {}, level: "error" });
}

/** Captures lines for tests: `const { logger, lines } = memoryLogger()`. */
export function memoryLogger(level: LogLevel = "debug"): {
  logger: Logger;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level, sink: (l) => lines.push(JSON.parse(l)) });
  return { logger, lines };
}

/**
 * Rate limiter for hot paths: allows `burst` lines per `intervalMs` per key and counts the
 * rest, reporting the suppressed count on the next allowed line.
 */
export class LogRateLimiter {
  #windows = new Map<string, { start: number; count: number; suppressed: number }>();
  constructor(
    private readonly burst = 5,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns undefined when the line must be dropped, else the number suppressed before it. */
  allow(key: string): number | undefined {
    const t = this.now();
    let w = this.#windows.get(key);
    if (!w || t - w.start >= this.intervalMs) {
      const suppressed = w?.suppressed ?? 0;
      w = { start: t, count: 0, suppressed: 0 };
      this.#windows.set(key, w);
      if (this.#windows.size > 1024) this.#windows.clear();
      w.count++;
      return suppressed;
    }
    if (w.count < this.burst) {
      w.count++;
      return 0;
    }
    w.suppressed++;
    return undefined;
  }
}

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === "string" && (LOG_LEVELS as readonly string[]).includes(v);
}
