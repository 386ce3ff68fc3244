// PromQL through Prometheus's own grammar (@prometheus-io/lezer-promql): syntax errors, and the metric
// names an expression reads (VectorSelector identifiers and {__name__="..."} matchers).
import { parser } from "@prometheus-io/lezer-promql";

// Grafana's variables are not PromQL; stand in for them before parsing.
export function fromGrafana(expr) {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b/g, "5m")
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, (v) => v);  // others sit inside label strings
}

// { names: Set, error: string|null }
export function analyze(expr) {
  const tree = parser.parse(expr);
  const names = new Set();
  let error = null;
  tree.iterate({
    enter(n) {
      if (n.type.isError && error === null) error = `syntax error at ${n.from}: ...${expr.slice(Math.max(0, n.from - 20), n.from + 20)}...`;
      if (n.name === "VectorSelector") {
        const id = n.node.getChild("Identifier");
        if (id) names.add(expr.slice(id.from, id.to));
      }
      if (n.name === "UnquotedLabelMatcher" && /^__name__\s*=\s*"/.test(expr.slice(n.from, n.to))) {
        names.add(/"([^"]*)"/.exec(expr.slice(n.from, n.to))[1]);
      }
    },
  });
  return { names, error };
}
