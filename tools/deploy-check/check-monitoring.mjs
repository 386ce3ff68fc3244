#!/usr/bin/env node
// Checks deploy/base/monitoring: every PromQL expression in the PrometheusRule and the Grafana
// dashboard parses (Prometheus's grammar); writes the rule groups as a plain rules file for promtool;
// lists the metric names they read, for the live /metrics comparison (tests/deploy/metrics_contract_test).
//   node check-monitoring.mjs MONITORING_DIR [--rules-out=FILE] [--print-metrics]
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { analyze, fromGrafana } from "./lib/promql.mjs";

const args = process.argv.slice(2);
const opt = (k) => (args.find((a) => a.startsWith(`--${k}=`)) || "").split("=").slice(1).join("=");
const dir = args.find((a) => !a.startsWith("--"));
if (!dir) {
  console.error("usage: check-monitoring.mjs MONITORING_DIR [--rules-out=FILE] [--print-metrics]");
  process.exit(2);
}
// Series Prometheus makes itself for every target, and kube-state-metrics series (kube-prometheus-stack
// runs it; docs/operations.md prerequisites) that say which psd3d objects exist; a rule may read them.
const SYNTHETIC = new Set(["up", "kube_deployment_created"]);

let failures = 0;
const fail = (where, msg) => { failures++; console.error(`FAIL ${where}: ${msg}`); };
const used = new Map();  // metric name -> where
const note = (names, where) => names.forEach((n) => used.has(n) || used.set(n, where));

const rule = YAML.parse(fs.readFileSync(path.join(dir, "prometheusrule.yaml"), "utf8"));
const recorded = new Set();
let alerts = 0;
for (const g of rule.spec.groups) {
  for (const r of g.rules) {
    const where = `PrometheusRule ${r.alert || r.record}`;
    if (r.record) recorded.add(r.record);
    if (r.alert) {
      alerts++;
      if (!r.labels?.severity) fail(where, "no severity label");
      if (!r.annotations?.summary || !r.annotations?.runbook_url) fail(where, "needs summary and runbook_url annotations");
    }
    const { names, error } = analyze(r.expr);
    if (error) fail(where, error);
    note(names, where);
  }
}
if (opt("rules-out")) fs.writeFileSync(opt("rules-out"), YAML.stringify({ groups: rule.spec.groups }));

// KEDA's scaling query reads the same metrics.
const scaled = YAML.parse(fs.readFileSync(path.join(dir, "..", "worker-scaledobject.yaml"), "utf8"));
for (const t of scaled.spec.triggers.filter((x) => x.type === "prometheus")) {
  const { names, error } = analyze(t.metadata.query);
  if (error) fail("ScaledObject query", error);
  note(names, "ScaledObject query");
}

const dash = JSON.parse(fs.readFileSync(path.join(dir, "psd3d-dashboard.json"), "utf8"));
let panels = 0;
const walk = (list) => {
  for (const p of list || []) {
    if (p.type === "row") { walk(p.panels); continue; }
    panels++;
    if (!p.targets?.length) fail(`dashboard panel "${p.title}"`, "no queries");
    for (const t of p.targets || []) {
      const { names, error } = analyze(fromGrafana(t.expr));
      if (error) fail(`dashboard panel "${p.title}"`, `${error} in ${t.expr}`);
      note(names, `dashboard panel "${p.title}"`);
    }
  }
};
walk(dash.panels);
for (const v of dash.templating?.list || []) {
  const q = typeof v.query === "string" ? v.query : v.query?.query || "";
  const m = /label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,/.exec(q);
  if (m) note([m[1]], `dashboard variable ${v.name}`);
}
const ids = new Set();
for (const p of dash.panels) { if (ids.has(p.id)) fail("dashboard", `duplicate panel id ${p.id}`); ids.add(p.id); }

for (const n of recorded) used.delete(n);
for (const n of SYNTHETIC) used.delete(n);
for (const [n, where] of used) if (!n.startsWith("psd3d_")) fail(where, `reads ${n}, which psd3d does not export`);
if (args.includes("--print-metrics")) {
  for (const [n, where] of [...used].sort()) console.log(`${n}\t${where}`);
} else {
  console.log(`monitoring: ${alerts} alerts, ${recorded.size} recording rules, ${panels} dashboard panels, ${used.size} metric names`);
}
if (failures) console.error(`monitoring: ${failures} problems`);
process.exit(failures === 0 ? 0 : 1);
