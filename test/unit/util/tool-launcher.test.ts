import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runToolCollect, setDirectSpawn, type ToolRun, ToolStartError } from '../../../src/util/tool-launcher.js';

/**
 * Tools run through the perl launcher must look exactly like tools spawned by Node: same
 * exit codes, signals, output, input, cwd, start errors and timeouts. Every case runs both ways.
 */
const test = suite('util: tool launcher');
const moduleUrl = new URL('../../../src/util/tool-launcher.js', import.meta.url).href;
let dir = '';

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-launcher-'));
});
test.after(() => {
  setDirectSpawn(false);
  rmSync(dir, { recursive: true, force: true });
});

const text = (r: ToolRun) => ({ code: r.code, signal: r.signal, out: r.stdout.toString(), err: r.stderr.toString() });

async function bothWays<T>(fn: () => Promise<T>): Promise<T> {
  setDirectSpawn(false);
  const viaLauncher = await fn();
  setDirectSpawn(true);
  const direct = await fn();
  setDirectSpawn(false);
  assert.equal(viaLauncher, direct, 'the launcher and a direct spawn agree');
  return viaLauncher;
}

test('tools run through perl, not forked from node', async () => {
  setDirectSpawn(false);
  const r = await runToolCollect(['sh', '-c', 'cat /proc/$PPID/comm']);
  assert.is(r.stdout.toString().trim(), 'perl');
  setDirectSpawn(true);
  const d = await runToolCollect(['sh', '-c', 'cat /proc/$PPID/comm']);
  assert.is(d.stdout.toString().trim(), 'node');
  setDirectSpawn(false);
});

test('arguments pass unchanged, output and exit codes come back', async () => {
  const args = ['plain', 'with space', '', 'new\nline', 'ünï', '--', '-n', '$HOME', "quo'te", 'back\\slash'];
  const r = await bothWays(async () => text(await runToolCollect(['printf', '[%s]', ...args])));
  assert.is(r.out, args.map((a) => `[${a}]`).join(''));
  const e = await bothWays(async () => text(await runToolCollect(['sh', '-c', 'echo out; echo err >&2; exit 3'])));
  assert.equal(e, { code: 3, signal: null, out: 'out\n', err: 'err\n' });
});

test('stdin, cwd and large outputs', async () => {
  const input = Buffer.from('line 1\nline 2\n');
  const r = await bothWays(async () => text(await runToolCollect(['cat'], { input })));
  assert.is(r.out, input.toString());
  const none = await bothWays(async () => text(await runToolCollect(['cat'])));
  assert.is(none.out, '', 'no input is /dev/null');
  const cwd = await bothWays(async () => text(await runToolCollect(['pwd'], { cwd: dir })));
  assert.is(cwd.out, `${dir}\n`);
  const big = await bothWays(async () => (await runToolCollect(['head', '-c', '3000000', '/dev/zero'])).stdout.length);
  assert.is(big, 3_000_000);
});

test('signals and timeouts', async () => {
  const term = await bothWays(async () => text(await runToolCollect(['sh', '-c', 'kill -TERM $$'])));
  assert.equal(term, { code: null, signal: 'SIGTERM', out: '', err: '' });
  const started = Date.now();
  const slow = await bothWays(async () => text(await runToolCollect(['sleep', '10'], { timeoutMs: 150 })));
  assert.equal(slow, { code: null, signal: 'SIGKILL', out: '', err: '' });
  assert.ok(Date.now() - started < 5000, 'the timeout kills the tool');
});

test('a missing or non-executable tool is a ToolStartError', async () => {
  const notExec = join(dir, 'not-exec');
  writeFileSync(notExec, '#!/bin/sh\n');
  chmodSync(notExec, 0o644);
  for (const [argv, code] of [
    [['kiln-no-such-tool'], 'ENOENT'],
    [[join(dir, 'missing')], 'ENOENT'],
    [[notExec], 'EACCES'],
  ] as const) {
    const got = await bothWays(async () => {
      const e = await runToolCollect([...argv]).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.instance(e, ToolStartError);
      return (e as ToolStartError).code;
    });
    assert.is(got, code, argv[0]);
  }
});

test('many tools at once each get their own result', async () => {
  setDirectSpawn(false);
  const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => runToolCollect(['sh', '-c', `sleep 0.0${i % 5}; echo ${i}`])));
  assert.equal(
    rs.map((r) => r.stdout.toString()),
    Array.from({ length: 40 }, (_, i) => `${i}\n`),
  );
});

test('hundreds of quick tools, one after another and all at once, each report once', async () => {
  setDirectSpawn(false);
  for (let i = 0; i < 150; i++) {
    const r = await runToolCollect(['true']);
    assert.is(r.code, 0);
  }
  const all = await Promise.all(Array.from({ length: 300 }, (_, i) => runToolCollect(i % 2 ? ['true'] : ['false'])));
  assert.equal(
    all.map((r) => r.code),
    Array.from({ length: 300 }, (_, i) => (i % 2 ? 0 : 1)),
  );
});

test('the launcher does not keep a process alive, and a dead launcher falls back to spawning', () => {
  const script = `
    const { runToolCollect } = await import(${JSON.stringify(moduleUrl)});
    // The tool's parent is its waiter; the waiter's parent is the launcher.
    const first = await runToolCollect(['sh', '-c', 'cut -d " " -f 4 /proc/$PPID/stat']);
    process.kill(Number(first.stdout.toString()), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const after = await runToolCollect(['echo', 'still works']);
    process.stdout.write(after.stdout.toString());`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'still works\n');
});

test.run();
