/** `kiln debug parse [--dump] FILE` through the CLI entry point (in process, output captured). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../../src/cli/main.js';
import { conformanceRoot } from '../../helpers/repo.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-debug-parse-'));

async function kiln(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void) => new Writable({ write(chunk, _enc, cb) { f(String(chunk)); cb(); } });
  const stdin = new PassThrough();
  stdin.end();
  const code = await main(argv, { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)), stdin, env: {}, cwd: dir });
  return { code, out, err };
}

test('--dump prints BuildKit dump format', async () => {
  const src = join(conformanceRoot, 'buildkit', 'frontend', 'dockerfile', 'parser', 'testfiles', 'health');
  const r = await kiln('debug', 'parse', '--dump', join(src, 'Dockerfile'));
  assert.is(r.code, 0, r.err);
  assert.is(r.out, readFileSync(join(src, 'result'), 'utf8'));
});

test('JSON output: typed, located stages', async () => {
  writeFileSync(join(dir, 'Dockerfile'), 'ARG V=1\nFROM alpine:$V AS base\nRUN --mount=type=cache,target=/c echo hi\n');
  const r = await kiln('debug', 'parse', 'Dockerfile');
  assert.is(r.code, 0, r.err);
  const df = JSON.parse(r.out);
  assert.is(df.metaArgs[0].args[0].key, 'V');
  assert.is(df.stages[0].name, 'base');
  assert.is(df.stages[0].instructions[0].kind, 'RUN');
  assert.equal(df.stages[0].instructions[0].range, { startLine: 3, endLine: 3 });
  assert.is(df.stages[0].instructions[0].mounts[0].type, 'cache');
  assert.is(df.source, undefined, 'the source text is not echoed');
});

test('a Dockerfile error prints file, line, message and a >>> excerpt, exit 1', async () => {
  writeFileSync(join(dir, 'Bad'), 'FROM a\nCOPY --frm=x a b\nRUN ok\n');
  for (const args of [['debug', 'parse', 'Bad'], ['debug', 'parse', '--dump', 'Bad']]) {
    const r = await kiln(...args);
    if (args.includes('--dump')) {
      assert.is(r.code, 0, 'the dump does not type instructions');
      continue;
    }
    assert.is(r.code, 1);
    assert.match(r.err, 'ERROR: Bad:2: COPY: unknown flag: --frm (did you mean --from?)');
    assert.match(r.err, /2 \| >>> COPY --frm=x a b/);
  }
  writeFileSync(join(dir, 'Bad2'), 'FROM a\nENV x\n');
  const r = await kiln('debug', 'parse', '--dump', 'Bad2');
  assert.is(r.code, 1);
  assert.match(r.err, 'Bad2:2: ENV: ENV must have two arguments');
  assert.match(r.err, />>> ENV x/);
});

test('missing file and wrong arity are clear errors', async () => {
  const missing = await kiln('debug', 'parse', 'nope');
  assert.is(missing.code, 1);
  assert.match(missing.err, 'Cannot read Dockerfile "nope": no such file');
  const none = await kiln('debug', 'parse');
  assert.is(none.code, 2);
  assert.match(none.err, 'takes exactly one FILE');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
