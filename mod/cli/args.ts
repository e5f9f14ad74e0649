/** A strict command-line parser: unknown flags are errors, `--flag=value` and `--flag value`. */

export interface FlagSpec {
  type: "string" | "boolean";
  description: string;
  /** Placeholder shown in help, e.g. "PATH". */
  arg?: string;
  /** May be given several times (values collected in order). */
  multiple?: boolean;
  hidden?: boolean;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export class UsageError extends Error {
  override name = "UsageError";
}

export function parseArgs(
  argv: readonly string[],
  flags: Record<string, FlagSpec>,
): { values: FlagValues; positionals: string[] } {
  const values: FlagValues = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === "-h") {
      values.help = true;
      continue;
    }
    if (!a.startsWith("--") || a === "-") {
      if (a.startsWith("-") && a !== "-") throw new UsageError(`unknown flag "${a}"`);
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq === -1 ? undefined : eq);
    const spec = name === "help" ? { type: "boolean" as const, description: "" } : flags[name];
    if (!spec) throw new UsageError(`unknown flag "--${name}"`);
    if (spec.type === "boolean") {
      if (eq !== -1) {
        const v = a.slice(eq + 1);
        if (v !== "true" && v !== "false") {
          throw new UsageError(`flag "--${name}" takes no value or true/false`);
        }
        values[name] = v === "true";
      } else values[name] = true;
      continue;
    }
    let v: string | undefined;
    if (eq !== -1) v = a.slice(eq + 1);
    else if (i + 1 < argv.length) v = argv[++i];
    if (v === undefined) throw new UsageError(`flag "--${name}" needs a value`);
    if (spec.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), v];
    else values[name] = v;
  }
  return { values, positionals };
}

export function flagHelp(flags: Record<string, FlagSpec>): string {
  const rows = Object.entries(flags).filter(([, s]) => !s.hidden).map(([n, s]) => [
    `  --${n}${s.type === "string" ? ` ${s.arg ?? "VALUE"}` : ""}`,
    s.description,
  ]);
  rows.push(["  --help, -h", "Show this help."]);
  const w = Math.max(...rows.map((r) => r[0].length)) + 2;
  return rows.map(([a, b]) => a.padEnd(w) + b).join("\n");
}
