/** Config errors: every problem carries the file, line, column and field path. */

export interface Position {
  file: string;
  line: number;
  col: number;
}

export interface ConfigIssue {
  /** Field path like `modules.edgeTunnel.relayNodes[1].advertiseAddress[0]`; "" for the file. */
  path: string;
  message: string;
  pos?: Position;
  severity: "error" | "warning";
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.pos ? `${i.pos.file}:${i.pos.line}:${i.pos.col}: ` : "";
  const field = i.path ? `${i.path}: ` : "";
  return `${where}${i.severity === "warning" ? "warning: " : ""}${field}${i.message}`;
}

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly issues: readonly ConfigIssue[]) {
    const errors = issues.filter((i) => i.severity === "error");
    super(
      `Invalid configuration (${errors.length} error${errors.length === 1 ? "" : "s"}):\n` +
        errors.map((i) => "  " + formatIssue(i)).join("\n"),
    );
  }
}
