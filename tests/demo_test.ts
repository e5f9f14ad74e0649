/** The README's first command works: `deno task demo` runs the whole story and cleans up. */
import { equal, match } from "node:assert/strict";
import { PROJECT_ROOT } from "./support/agent.ts";

Deno.test("deno task demo resolves, proxies through a relay, fails over, votes, and stops everything", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["task", "demo"],
    cwd: PROJECT_ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  const err = new TextDecoder().decode(r.stderr);
  equal(r.code, 0, out + err);
  match(out, /hello\.demo\.svc\.cluster\.local\n\s+→ 198\.19\.0\.20/);
  match(
    out,
    /→ hello from pod hello-b on node edge-b\n\s+edge-a reaches edge-b via relay relay-\d/,
  );
  match(out, /path="tunnel-relay"\} 1/);
  match(
    out,
    /→ hello from pod hello-b on node edge-b +\(\d+ ms after the kill\)\n\s+edge-a now reaches edge-b via relay relay-\d/,
  );
  match(out, /relay-\d +unhealthy/);
  match(out, /all agents stopped, .* removed; total \d+\.\d s/);
  const total = Number(/total (\d+\.\d) s/.exec(out)![1]);
  equal(total < 60, true, `the demo took ${total} s`);
});
