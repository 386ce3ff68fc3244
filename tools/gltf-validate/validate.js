#!/usr/bin/env node
// Validates GLB/glTF files with the Khronos glTF-Validator (npm gltf-validator, pinned in package.json).
// Usage: node tools/gltf-validate/validate.js [--fail-on-warnings] FILE...
// Prints one summary line per file, then that file's issues. Exit status: 0 when every file is valid,
// 1 when any file has errors (or warnings, with --fail-on-warnings), 2 on a usage or setup problem.
'use strict';

const fs = require('fs');
const path = require('path');

let validator;
try {
  validator = require('gltf-validator');
} catch (e) {
  console.error('gltf-validate: the gltf-validator package is not installed; run ' +
                `\`npm ci --prefix ${path.relative(process.cwd(), __dirname) || '.'}\``);
  process.exit(2);
}

const SEVERITY = ['error', 'warning', 'info', 'hint'];

async function validateFile(file, failOnWarnings) {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const report = await validator.validateBytes(bytes, {uri: path.basename(file), maxIssues: 0, writeTimestamp: false});
  const s = report.issues;
  console.log(`${file}: ${s.numErrors} errors, ${s.numWarnings} warnings, ${s.numInfos} infos, ${s.numHints} hints` +
              ` (validator ${report.validatorVersion})`);
  for (const m of s.messages) {
    console.log(`  ${SEVERITY[m.severity] || m.severity} ${m.code}: ${m.message}${m.pointer ? ` at ${m.pointer}` : ''}`);
  }
  return s.numErrors > 0 || (failOnWarnings && s.numWarnings > 0);
}

async function main(argv) {
  const failOnWarnings = argv.includes('--fail-on-warnings');
  const files = argv.filter((a) => a !== '--fail-on-warnings');
  if (files.length === 0 || files.some((f) => f.startsWith('--'))) {
    console.error('usage: validate.js [--fail-on-warnings] FILE...');
    return 2;
  }
  let failed = false;
  for (const file of files) {
    try {
      if (await validateFile(file, failOnWarnings)) failed = true;
    } catch (e) {
      console.log(`${file}: could not be validated: ${e}`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
