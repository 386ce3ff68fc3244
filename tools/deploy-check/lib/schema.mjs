// Validates Kubernetes objects two ways: the kubernetes-models validators (types, enums, required
// fields, formats) for the core API, KEDA and the Prometheus Operator, and TypeScript's excess-property
// check against the same models' interfaces, which rejects unknown or misspelt fields at any depth
// (the validators alone accept them, as the API server would silently drop them).
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";

const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.dirname(here);

function modulePath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "keda.sh") return `@kubernetes-models/keda/keda.sh/${version}/${kind}`;
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

// Returns a list of "Kind/name: problem" strings; empty when every object is valid.
export async function validateObjects(objects) {
  const problems = [];
  const lines = [];
  for (const [i, o] of objects.entries()) {
    const name = `${o.kind}/${o.metadata?.name}`;
    const mod = modulePath(o.apiVersion, o.kind);
    let Model;
    try {
      Model = (await import(mod))[o.kind];
    } catch {
      problems.push(`${name}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (e) {
      problems.push(`${name}: ${e.message}`);
    }
    lines.push(`import type { I${o.kind} as T${i} } from "${mod}";`);
    lines.push(`// ${name}\nexport const o${i}: T${i} = ${JSON.stringify(o, null, 1)};`);
  }
  problems.push(...typeCheck(lines.join("\n"), objects));
  return problems;
}

function typeCheck(source, objects) {
  const dir = fs.mkdtempSync(path.join(root, ".typecheck-"));
  const file = path.join(dir, "objects.ts");
  try {
    fs.writeFileSync(file, source);
    const program = ts.createProgram([file], {
      strict: true, noEmit: true, skipLibCheck: true, types: [],
      module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
      if (!d.file || d.start === undefined) return text;
      // Name the object: the nearest "// Kind/name" comment above the error.
      const before = d.file.text.slice(0, d.start);
      const at = before.lastIndexOf("\n// ");
      const name = at >= 0 ? before.slice(at + 4, before.indexOf("\n", at + 1)) : "?";
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      return `${name}: ${text.split("\n").slice(-1)[0]} (near: ${d.file.text.split("\n")[line].trim()})`;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
