#!/usr/bin/env node
// Runs the compiled uvu suites under dist/test and ends with one summary line
// "tests: N passed, N failed, N skipped" so CI can tell a run that executed nothing.
// Usage: node scripts/run-tests.mjs [folder ...]   (folders under test/: unit conformance integration)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const folders = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const wanted = folders.length ? folders : ['unit', 'conformance', 'integration'];
const pattern = `^(${wanted.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})/.*\\.test\\.js$`;
const testDir = join(root, 'dist', 'test');
if (!existsSync(testDir)) {
  console.error('dist/test is missing: run "npm run build" first');
  process.exit(2);
}
const child = spawn(process.execPath, [join(root, 'node_modules', 'uvu', 'bin.js'), testDir, pattern], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, FORCE_COLOR: '0' },
});
let out = '';
child.stdout.on('data', (c) => {
  process.stdout.write(c);
  out += c.toString();
});
child.on('close', (code) => {
  const num = (label) => {
    const m = new RegExp(`${label}:\\s+(\\d+)`).exec(out);
    return m ? Number(m[1]) : 0;
  };
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped');
  const failed = Math.max(0, total - passed - skipped) || (code !== 0 && passed === total ? 1 : 0);
  console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (total === 0) {
    console.error('No test ran.');
    process.exit(1);
  }
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
