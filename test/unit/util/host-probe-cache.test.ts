import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('util: host probe cache');
const moduleUrl = new URL('../../../src/util/host-probe-cache.js', import.meta.url).href;

/**
 * One kiln-like process: probes "p" with key `key`; the probe appends a line to `runs`
 * and returns `result`. Prints the value it got.
 */
function probeIn(home: string, key: string, result: 'ok' | 'fail', extraEnv: Record<string, string> = {}, valid = true): string {
  const runs = join(home, 'runs');
  const script = `
    const { cachedProbe } = await import(${JSON.stringify(moduleUrl)});
    const { appendFileSync } = await import('node:fs');
    const v = await cachedProbe('p', [${JSON.stringify(key)}], async () => { appendFileSync(${JSON.stringify(runs)}, 'x'); return { ok: ${result === 'ok'}, at: ${JSON.stringify(key)} }; },
      { keep: (r) => r.ok, stillValid: () => ${valid} });
    process.stdout.write(JSON.stringify(v));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', XDG_CACHE_HOME: home, ...extraEnv }, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return r.stdout;
}

function runs(home: string): number {
  try {
    return readFileSync(join(home, 'runs'), 'utf8').length;
  } catch {
    return 0;
  }
}

/** Run `fn` with a fresh cache home (XDG_CACHE_HOME of the child processes), removed afterwards. */
function withHome(fn: (home: string) => void): () => void {
  return () => {
    const home = mkdtempSync(join(tmpdir(), 'kiln-probe-'));
    try {
      fn(home);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  };
}

test('a success is probed once and reused by later processes; another key probes again', withHome((home) => {
  assert.is(probeIn(home, 'bwrap:1', 'ok'), '{"ok":true,"at":"bwrap:1"}');
  assert.is(probeIn(home, 'bwrap:1', 'ok'), '{"ok":true,"at":"bwrap:1"}');
  assert.is(runs(home), 1);
  assert.is(probeIn(home, 'bwrap:2', 'ok'), '{"ok":true,"at":"bwrap:2"}', 'a changed binary identity is probed');
  assert.is(runs(home), 2);
  assert.is(probeIn(home, 'bwrap:2', 'ok', {}, false), '{"ok":true,"at":"bwrap:2"}');
  assert.is(runs(home), 3, 'an entry its checker rejects is probed again');
  probeIn(home, 'bwrap:2', 'ok', { KILN_NO_PROBE_CACHE: '1' });
  assert.is(runs(home), 4, 'KILN_NO_PROBE_CACHE=1 always probes');
  assert.match(readFileSync(join(home, 'kiln', 'host-probes.json'), 'utf8'), /"p":\{"key":"[0-9a-f]{64}"/);
}));

test('a failure is never remembered: each process probes again and sees it', withHome((home) => {
  assert.is(probeIn(home, 'k', 'fail'), '{"ok":false,"at":"k"}');
  assert.is(probeIn(home, 'k', 'fail'), '{"ok":false,"at":"k"}');
  assert.is(runs(home), 2);
}));

test('a cache file owned by another user is ignored', withHome((home) => {
  if (process.geteuid?.() !== 0) assert.unreachable('this test chowns a file: run the suite as root (CI does)');
  probeIn(home, 'k', 'ok');
  chownSync(join(home, 'kiln', 'host-probes.json'), 4242, 4242);
  probeIn(home, 'k', 'ok');
  assert.is(runs(home), 2);
}));

test.run();
