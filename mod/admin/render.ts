/** Renders the status document for humans (`edgemesh status`). */

export interface RenderOptions {
  color: boolean;
}

type Doc = Record<string, unknown>;

const asArray = (v: unknown): Doc[] => (Array.isArray(v) ? v as Doc[] : []);

export function renderStatus(doc: Doc, opts: RenderOptions): string {
  const c = (code: string, s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const bold = (s: string) => c("1", s);
  const stateColor = (s: string) =>
    s === "ready" || s === "healthy"
      ? c("32", s)
      : s === "degraded" || s === "unknown" || s === "starting"
      ? c("33", s)
      : c("31", s);
  const lines: string[] = [];
  lines.push(
    `${bold("node")} ${doc.node}   ${bold("version")} ${doc.version}   ${
      bold("uptime")
    } ${doc.uptimeSeconds}s`,
  );
  const degraded = asArray(doc.degraded);
  if (degraded.length) lines.push(`${c("33", "degraded:")} ${degraded.join(", ")}`);
  lines.push("", bold("MODULES"));
  for (const [name, s] of Object.entries((doc.modules ?? {}) as Record<string, Doc>)) {
    lines.push(
      `  ${name.padEnd(10)} ${stateColor(String(s.state)).padEnd(opts.color ? 19 : 10)} ${
        s.detail ?? ""
      }`,
    );
  }
  const peers = asArray(doc.peers);
  lines.push("", bold(`PEERS (${peers.length})`));
  for (const p of peers) {
    const via = p.path === "tunnel-relay" ? `via ${p.relay}` : String(p.path);
    lines.push(
      `  ${String(p.node).padEnd(20)} ${via.padEnd(22)} ${p.rttMs ?? "-"} ms  ${p.peerId ?? ""}`,
    );
  }
  const relays = asArray(doc.relays);
  const self = doc.relayService as Doc | null | undefined;
  const selfLine = self
    ? `   this node: ${self.reachability}, ${self.relaying ? "relaying" : "not relaying"}`
    : "";
  lines.push("", bold(`RELAYS (${relays.length})`) + selfLine);
  for (const r of relays) {
    lines.push(
      `  ${String(r.node).padEnd(20)} ${String(r.role).padEnd(10)} ${r.rttMs ?? "-"} ms  ${
        r.reserved ? "reserved" : r.error ? String(r.error) : ""
      }`,
    );
  }
  const services = asArray(doc.services);
  lines.push("", bold(`SERVICES (${services.length})`));
  for (const s of services) {
    const eps = asArray(s.endpoints);
    const ips = asArray(s.clusterIPs).join(",");
    lines.push(
      `  ${`${s.namespace}/${s.name}`.padEnd(36)} ${ips.padEnd(16)} ${eps.length} endpoint(s)`,
    );
    for (const e of eps) {
      lines.push(
        `      ${`${e.ip}:${e.port}`.padEnd(24)} ${String(e.node ?? "").padEnd(16)} ${
          e.ready ? "ready" : "not-ready"
        } ${e.path ?? ""}`,
      );
    }
  }
  const health = (doc.health ?? {}) as Doc;
  const members = asArray(health.members);
  lines.push("", bold(`HEALTH (group ${health.group ?? "-"}, ${members.length} members)`));
  for (const m of members) {
    lines.push(
      `  ${String(m.node).padEnd(20)} ${stateColor(String(m.verdict))}  +${m.healthy ?? 0}/-${
        m.unhealthy ?? 0
      }  ${m.decidedAt ?? ""}`,
    );
  }
  return lines.join("\n") + "\n";
}
