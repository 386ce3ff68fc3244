// A small Dockerfile reader: instructions (continuations joined, comments dropped) grouped by stage,
// with exec-form arguments parsed as JSON.
export function parseDockerfile(text) {
  const stages = [];
  const globalArgs = [];
  let logical = "";
  const lines = [];
  for (const raw of text.split("\n")) {
    if (/^\s*#/.test(raw) && logical === "") continue;
    if (/^\s*#/.test(raw)) continue;  // comment inside a continuation
    if (/\\\s*$/.test(raw)) { logical += raw.replace(/\\\s*$/, " "); continue; }
    logical += raw;
    if (logical.trim()) lines.push(logical.trim());
    logical = "";
  }
  for (const line of lines) {
    const m = /^(\S+)\s*(.*)$/s.exec(line);
    const ins = { keyword: m[1].toUpperCase(), rest: m[2] };
    if (ins.keyword === "FROM") {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(ins.rest);
      stages.push({ image: f[1], name: f[2] || String(stages.length), instructions: [] });
      continue;
    }
    if (stages.length === 0) { globalArgs.push(ins); continue; }
    stages[stages.length - 1].instructions.push(ins);
  }
  return { stages, globalArgs };
}

// Exec-form ["a", "b"] → array; shell form → null.
export function execForm(rest) {
  const s = rest.trim();
  if (!s.startsWith("[")) return null;
  return JSON.parse(s);
}

// The last value of an instruction in a stage, following FROM <stage> chains (ENTRYPOINT, CMD, USER).
export function effective(df, stageName, keyword) {
  let stage = df.stages.find((s) => s.name === stageName);
  while (stage) {
    const found = stage.instructions.filter((i) => i.keyword === keyword).pop();
    if (found) return found;
    stage = df.stages.find((s) => s.name === stage.image);
  }
  return undefined;
}
