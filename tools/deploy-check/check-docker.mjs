#!/usr/bin/env node
// Checks docker/: the Dockerfiles lint clean (dockerfile-utils), build from a context that
// .dockerignore lets through, end as a non-root user with a health check, pass only flags the binaries
// accept (--help), bake in no secret; docker-compose.yml runs the same programs with the same flags as
// scripts/demo.sh (values such as addresses may differ), and only flags the binaries accept.
//   node check-docker.mjs REPO_ROOT --server=BIN --worker=BIN --cli=BIN
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { validate as lintDockerfile } from "dockerfile-utils";
import { effective, execForm, parseDockerfile } from "./lib/dockerfile.mjs";
import { flagName, helpFlags } from "./lib/help.mjs";
import { commandsIn } from "./lib/shell.mjs";

const args = process.argv.slice(2);
const opt = (k) => (args.find((a) => a.startsWith(`--${k}=`)) || "").split("=").slice(1).join("=");
const root = args.find((a) => !a.startsWith("--"));
if (!root || !opt("server") || !opt("worker") || !opt("cli")) {
  console.error("usage: check-docker.mjs REPO_ROOT --server=BIN --worker=BIN --cli=BIN");
  process.exit(2);
}
const help = { "psd3d-server": helpFlags(opt("server")), "psd3d-worker": helpFlags(opt("worker")), psd3d: helpFlags(opt("cli")) };
const PROGRAMS = ["redis-server", "psd3d-server", "psd3d-worker", "psd3d"];
// The image each Dockerfile stage is expected to run, and whether it needs a HEALTHCHECK.
const IMAGES = [
  { file: "docker/server.Dockerfile", stage: "server", program: "psd3d-server", health: true },
  { file: "docker/server.Dockerfile", stage: "cli", program: "psd3d", health: false },
  { file: "docker/worker.Dockerfile", stage: "worker", program: "psd3d-worker", health: true },
];

let failures = 0;
const fail = (where, msg) => { failures++; console.log(`FAIL ${where}: ${msg}`); };
const read = (f) => fs.readFileSync(path.join(root, f), "utf8");

function checkFlags(where, program, words) {
  const flags = help[program];
  if (!flags) return;
  for (const w of words) {
    const f = flagName(w);
    if (f && !flags.has(f)) fail(where, `--${f} is not a flag of ${program} (not in its --help)`);
  }
}

// .dockerignore: an allowlist ("*" then "!path" lines), as the Dockerfiles assume.
const allowed = read(".dockerignore").split("\n").map((l) => l.trim())
  .filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
const inContext = (p) => allowed.some((a) => p === a || p.startsWith(`${a}/`) || a.startsWith(`${p.replace(/\/$/, "")}/`));

const dockerfiles = {};
for (const file of [...new Set(IMAGES.map((i) => i.file))]) {
  const text = read(file);
  for (const d of lintDockerfile(text)) fail(file, `line ${d.range.start.line + 1}: ${d.message}`);
  const df = parseDockerfile(text);
  dockerfiles[file] = df;
  for (const s of df.stages) {
    if (/:latest$/.test(s.image) || (!s.image.includes(":") && !df.stages.some((t) => t.name === s.image) && !s.image.startsWith("$"))) {
      fail(file, `stage ${s.name}: base image ${s.image} is not pinned to a tag`);
    }
    for (const ins of s.instructions) {
      if (/^(ENV|ARG)$/.test(ins.keyword) && /(PASSWORD|TOKEN|SECRET)/i.test(ins.rest)) fail(file, `${ins.keyword} ${ins.rest}: secrets must not be baked into images`);
      if (ins.keyword === "COPY" && !/--from=/.test(ins.rest)) {
        const parts = (execForm(ins.rest) || ins.rest.split(/\s+/)).filter((p) => !p.startsWith("--"));
        for (const src of parts.slice(0, -1)) {
          if (!fs.existsSync(path.join(root, src))) fail(file, `COPY ${src}: no such path in the repository`);
          else if (!inContext(src.replace(/\/$/, ""))) fail(file, `COPY ${src}: excluded by .dockerignore`);
        }
      }
    }
  }
}

for (const img of IMAGES) {
  const df = dockerfiles[img.file];
  const where = `${img.file} (${img.stage})`;
  if (!df.stages.some((s) => s.name === img.stage)) { fail(where, "no such stage"); continue; }
  const user = effective(df, img.stage, "USER")?.rest || "root";
  if (/^(0|root)(:|$)/.test(user)) fail(where, `runs as ${user}`);
  const entry = execForm(effective(df, img.stage, "ENTRYPOINT")?.rest || "[]");
  if (entry[0] !== img.program) fail(where, `ENTRYPOINT is ${JSON.stringify(entry)}, not ${img.program}`);
  checkFlags(`${where} CMD`, img.program, execForm(effective(df, img.stage, "CMD")?.rest || "[]"));
  const hc = effective(df, img.stage, "HEALTHCHECK");
  if (img.health && !hc) fail(where, "no HEALTHCHECK");
  const hcCmd = hc && /CMD\s+(\[.*\])\s*$/.exec(hc.rest);
  if (hcCmd) {
    const argv = JSON.parse(hcCmd[1]);
    if (PROGRAMS.includes(argv[0])) checkFlags(`${where} HEALTHCHECK`, argv[0], argv.slice(1));
  }
}

// docker-compose.yml against scripts/demo.sh.
const compose = YAML.parse(read("docker/docker-compose.yml"), { merge: true });
const demo = commandsIn(read("scripts/demo.sh"), PROGRAMS);
const flagSet = (words) => [...new Set(words.map(flagName).filter(Boolean))].sort();
const positional = (words) => words.filter((w) => !flagName(w) && !w.startsWith("$"));
for (const p of PROGRAMS) if (!demo.some((d) => d.program === p)) fail("scripts/demo.sh", `runs no ${p} (the compose check needs it)`);
const programOf = (svc) => {
  if (svc.build) {
    const img = IMAGES.find((i) => i.file === svc.build.dockerfile && i.stage === (svc.build.target || dockerfiles[i.file].stages.at(-1).name));
    return img?.program;
  }
  return svc.command?.[0];
};
const covered = new Set();
for (const [name, svc] of Object.entries(compose.services)) {
  const program = programOf(svc);
  const where = `docker-compose.yml service ${name}`;
  if (!PROGRAMS.includes(program)) { fail(where, `runs ${program}, which the demo does not`); continue; }
  if (!Array.isArray(svc.command)) { fail(where, "command must be an exec-form list"); continue; }
  const words = svc.command[0] === program ? svc.command.slice(1) : svc.command;
  const want = demo.find((d) => d.program === program);
  covered.add(program);
  const got = flagSet(words);
  const expected = flagSet(want.words);
  if (JSON.stringify(got) !== JSON.stringify(expected)) {
    fail(where, `${program} flags ${got.join(" ")} differ from scripts/demo.sh's ${expected.join(" ")}`);
  }
  if (program === "psd3d" && positional(words)[0] !== positional(want.words)[0]) {
    fail(where, `runs psd3d ${positional(words)[0]}, the demo psd3d ${positional(want.words)[0]}`);
  }
  checkFlags(where, program, words);
  const test = svc.healthcheck?.test;
  if (Array.isArray(test) && PROGRAMS.includes(test[1])) checkFlags(`${where} healthcheck`, test[1], test.slice(2));
}
for (const p of PROGRAMS) if (!covered.has(p)) fail("docker-compose.yml", `no service runs ${p} as the demo does`);
if (!/appendonly/.test(JSON.stringify(compose.services.redis?.command)) || !compose.services.redis?.volumes?.length) {
  fail("docker-compose.yml", "redis must run with AOF on a volume");
}

console.log(failures === 0 ? "docker: all checks passed" : `docker: ${failures} problems`);
process.exit(failures === 0 ? 0 : 1);
