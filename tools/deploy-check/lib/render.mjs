// Renders a kustomization with `kubectl kustomize` (offline) and parses the YAML stream.
import { execFileSync } from "node:child_process";
import YAML from "yaml";

export function kustomizeVersion() {
  const out = execFileSync("kubectl", ["version", "--client", "-o", "json"], { encoding: "utf8" });
  const v = JSON.parse(out).kustomizeVersion || "";
  const major = Number((/^v?(\d+)/.exec(v) || [])[1] || 0);
  return { text: v, major };
}

export function render(dir) {
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return parseAll(out, dir);
}

export function parseAll(text, where) {
  const docs = YAML.parseAllDocuments(text);
  const objects = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${where}: ${d.errors[0].message}`);
    const o = d.toJS();
    if (o) objects.push(o);
  }
  return objects;
}

export const id = (o) => `${o.kind}/${o.metadata?.name}`;
