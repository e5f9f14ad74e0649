/** Label and field selectors of the test metaserver (the equality subset plus set forms). */

type Obj = { metadata?: { name?: string; namespace?: string; labels?: Record<string, string> } };

export type Matcher = (obj: Obj) => boolean;

export class SelectorError extends Error {
  override name = "SelectorError";
}

/** Splits on commas that are not inside parentheses. */
function terms(selector: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of selector) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out.filter((t) => t.length > 0);
}

/** `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`. */
export function labelSelector(selector: string | null): Matcher {
  if (!selector) return () => true;
  const tests: ((labels: Record<string, string>) => boolean)[] = [];
  for (const t of terms(selector)) {
    let m: RegExpMatchArray | null;
    if ((m = t.match(/^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/))) {
      const [, k, op, v] = m;
      tests.push(op === "!=" ? (l) => l[k] !== v : (l) => l[k] === v);
    } else if ((m = t.match(/^([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)$/))) {
      const [, k, op, list] = m;
      const set = new Set(list.split(",").map((s) => s.trim()));
      tests.push(op === "in" ? (l) => k in l && set.has(l[k]) : (l) => !(k in l) || !set.has(l[k]));
    } else if ((m = t.match(/^!([\w./-]+)$/))) {
      const k = m[1];
      tests.push((l) => !(k in l));
    } else if ((m = t.match(/^([\w./-]+)$/))) {
      const k = m[1];
      tests.push((l) => k in l);
    } else {
      throw new SelectorError(`unable to parse requirement: ${JSON.stringify(t)}`);
    }
  }
  return (obj) => {
    const labels = obj.metadata?.labels ?? {};
    return tests.every((f) => f(labels));
  };
}

/** `metadata.name` and `metadata.namespace` with `=`, `==`, `!=`. */
export function fieldSelector(selector: string | null): Matcher {
  if (!selector) return () => true;
  const tests: Matcher[] = [];
  for (const t of terms(selector)) {
    const m = t.match(/^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw new SelectorError(`field label not supported: ${JSON.stringify(t)}`);
    const [, field, op, v] = m;
    const get = field === "metadata.name"
      ? (o: Obj) => o.metadata?.name ?? ""
      : (o: Obj) => o.metadata?.namespace ?? "";
    tests.push(op === "!=" ? (o) => get(o) !== v : (o) => get(o) === v);
  }
  return (obj) => tests.every((f) => f(obj));
}
