// Flag names a binary accepts, read from its --help (Abseil's format: "    --name (help); default: ...").
import { execFileSync } from "node:child_process";

export function helpFlags(binary) {
  let out;
  try {
    out = execFileSync(binary, ["--help"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    out = `${e.stdout || ""}${e.stderr || ""}`;  // Abseil exits 1 after --help
  }
  const flags = new Set();
  for (const m of out.matchAll(/^ {4}--([A-Za-z0-9_]+) \(/gm)) flags.add(m[1]);
  for (const builtin of ["help", "helpfull", "version"]) flags.add(builtin);  // Abseil's own
  if (flags.size === 3) throw new Error(`${binary} --help listed no flags:\n${out.slice(0, 500)}`);
  return flags;
}

// "--name=value" / "--name" / "-name" → "name"; anything else (positional, "--") → null.
export function flagName(arg) {
  const m = /^--?([A-Za-z0-9_]+)(=|$)/.exec(arg);
  return m ? m[1] : null;
}
