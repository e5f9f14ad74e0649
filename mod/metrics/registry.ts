/** A small Prometheus registry: counters, gauges and histograms with labels, text format 0.0.4. */

export type Labels = Record<string, string | number>;

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  render(out: string[]): void;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelKey(labelNames: readonly string[], labels: Labels | undefined): string {
  if (labelNames.length === 0) return "";
  const parts: string[] = [];
  for (const n of labelNames) {
    const v = labels?.[n];
    parts.push(`${n}="${escapeLabel(v === undefined ? "" : String(v))}"`);
  }
  return parts.join(",");
}

function fmt(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export class Counter implements Metric {
  readonly type = "counter";
  #values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {}

  inc(labels?: Labels, by = 1): void {
    const k = labelKey(this.labelNames, labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  get(labels?: Labels): number {
    return this.#values.get(labelKey(this.labelNames, labels)) ?? 0;
  }

  /** An incrementer with its labels rendered once, for hot paths (per connection or chunk). */
  bind(labels?: Labels): (by?: number) => void {
    const k = labelKey(this.labelNames, labels);
    return (by = 1) => {
      this.#values.set(k, (this.#values.get(k) ?? 0) + by);
    };
  }

  render(out: string[]): void {
    for (const [k, v] of this.#values) out.push(`${this.name}${k ? `{${k}}` : ""} ${fmt(v)}`);
  }
}

export class Gauge implements Metric {
  readonly type = "gauge";
  #values = new Map<string, number>();
  #collect?: (set: (value: number, labels?: Labels) => void) => void;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {}

  set(value: number, labels?: Labels): void {
    this.#values.set(labelKey(this.labelNames, labels), value);
  }
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(this.labelNames, labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }
  dec(labels?: Labels, by = 1): void {
    this.inc(labels, -by);
  }
  /** An adder (negative to decrease) with its labels rendered once, for hot paths. */
  bind(labels?: Labels): (by: number) => void {
    const k = labelKey(this.labelNames, labels);
    return (by) => {
      this.#values.set(k, (this.#values.get(k) ?? 0) + by);
    };
  }
  get(labels?: Labels): number {
    return this.#values.get(labelKey(this.labelNames, labels)) ?? 0;
  }
  /** Computes values at scrape time instead of tracking them; replaces earlier values. */
  collect(fn: (set: (value: number, labels?: Labels) => void) => void): this {
    this.#collect = fn;
    return this;
  }
  render(out: string[]): void {
    if (this.#collect) {
      this.#values.clear();
      this.#collect((v, l) => this.set(v, l));
    }
    for (const [k, v] of this.#values) out.push(`${this.name}${k ? `{${k}}` : ""} ${fmt(v)}`);
  }
}

export class Histogram implements Metric {
  readonly type = "histogram";
  #series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
    readonly buckets: readonly number[] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  ) {}

  observe(value: number, labels?: Labels): void {
    const k = labelKey(this.labelNames, labels);
    let s = this.#series.get(k);
    if (!s) {
      s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.#series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  count(labels?: Labels): number {
    return this.#series.get(labelKey(this.labelNames, labels))?.count ?? 0;
  }

  /** An observer with its labels rendered once, for hot paths (thousands of calls a second). */
  bind(labels?: Labels): (value: number) => void {
    const k = labelKey(this.labelNames, labels);
    return (value) => {
      let s = this.#series.get(k);
      if (!s) {
        s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
        this.#series.set(k, s);
      }
      for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
      s.sum += value;
      s.count++;
    };
  }

  render(out: string[]): void {
    for (const [k, s] of this.#series) {
      const sep = k ? "," : "";
      for (let i = 0; i < this.buckets.length; i++) {
        out.push(`${this.name}_bucket{${k}${sep}le="${fmt(this.buckets[i])}"} ${s.counts[i]}`);
      }
      out.push(`${this.name}_bucket{${k}${sep}le="+Inf"} ${s.count}`);
      out.push(`${this.name}_sum${k ? `{${k}}` : ""} ${fmt(s.sum)}`);
      out.push(`${this.name}_count${k ? `{${k}}` : ""} ${s.count}`);
    }
  }
}

/**
 * Holds metrics by name. Asking twice for the same name returns the same metric, so
 * modules restarted by hot reload keep their series.
 */
export class Registry {
  #metrics = new Map<string, Metric>();

  #get<T extends Metric>(name: string, make: () => T, type: Metric["type"]): T {
    if (!NAME_RE.test(name)) throw new Error(`Invalid metric name "${name}"`);
    const existing = this.#metrics.get(name);
    if (existing) {
      if (existing.type !== type) {
        throw new Error(`Metric "${name}" already registered as a ${existing.type}, not a ${type}`);
      }
      return existing as T;
    }
    const m = make();
    this.#metrics.set(name, m);
    return m;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#get(name, () => new Counter(name, help, labelNames), "counter");
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#get(name, () => new Gauge(name, help, labelNames), "gauge");
  }
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets?: readonly number[],
  ): Histogram {
    return this.#get(name, () => new Histogram(name, help, labelNames, buckets), "histogram");
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    for (const m of this.#metrics.values()) {
      out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      out.push(`# TYPE ${m.name} ${m.type}`);
      m.render(out);
    }
    return out.join("\n") + "\n";
  }
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
