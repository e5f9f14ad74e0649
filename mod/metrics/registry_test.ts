import { equal, match, throws } from "node:assert/strict";
import { Registry } from "./mod.ts";

Deno.test("Registry.render() prints counters, gauges and histograms in the Prometheus text format", () => {
  const r = new Registry();
  const c = r.counter("edgemesh_test_total", "A test counter.", ["kind"]);
  c.inc({ kind: "a" });
  c.inc({ kind: "a" }, 2);
  c.inc({ kind: 'q"uote' });
  r.gauge("edgemesh_test_gauge", "A gauge.").set(7);
  r.gauge("edgemesh_test_collected", "Collected.", ["x"]).collect((set) => set(3, { x: "y" }));
  const h = r.histogram("edgemesh_test_seconds", "A histogram.", [], [0.1, 1]);
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const text = r.render();
  match(
    text,
    /^# HELP edgemesh_test_total A test counter\.\n# TYPE edgemesh_test_total counter\n/m,
  );
  match(text, /^edgemesh_test_total\{kind="a"\} 3$/m);
  match(text, /^edgemesh_test_total\{kind="q\\"uote"\} 1$/m);
  match(text, /^edgemesh_test_gauge 7$/m);
  match(text, /^edgemesh_test_collected\{x="y"\} 3$/m);
  match(text, /^edgemesh_test_seconds_bucket\{le="0.1"\} 1$/m);
  match(text, /^edgemesh_test_seconds_bucket\{le="1"\} 2$/m);
  match(text, /^edgemesh_test_seconds_bucket\{le="\+Inf"\} 3$/m);
  match(text, /^edgemesh_test_seconds_count 3$/m);
  equal(c.get({ kind: "a" }), 3);
});

Deno.test("Registry returns the same metric for the same name and refuses a type clash or bad name", () => {
  const r = new Registry();
  equal(r.counter("a_total", "x"), r.counter("a_total", "x"));
  throws(() => r.gauge("a_total", "x"), /already registered as a counter/);
  throws(() => r.counter("bad-name", "x"), /Invalid metric name/);
});

Deno.test("Counter.bind() and Gauge.bind() add to the same series as inc()/dec()", () => {
  const r = new Registry();
  const c = r.counter("edgemesh_test_bound_total", "Bound.", ["kind"]);
  const add = c.bind({ kind: "a" });
  add();
  add(4);
  c.inc({ kind: "a" });
  equal(c.get({ kind: "a" }), 6);
  const g = r.gauge("edgemesh_test_bound", "Bound gauge.", ["kind"]);
  const move = g.bind({ kind: "b" });
  move(3);
  g.dec({ kind: "b" });
  move(-1);
  equal(g.get({ kind: "b" }), 1);
});
