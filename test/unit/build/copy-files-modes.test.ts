/** COPY keeps every permission bit of copied files whatever the process umask (real temp dirs). */
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseModeSpec } from '../../../src/build/chmod-spec.js';
import { copyFiles } from '../../../src/build/copy-files.js';

const modes = [0o600, 0o640, 0o644, 0o666, 0o755, 0o777, 0o700, 0o4755, 0o2755, 0o1777, 0o444, 0o000];

async function source(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'kiln-copy-modes-'));
  await mkdir(join(d, 'ctx', 'm'), { recursive: true });
  for (const m of modes) {
    const f = join(d, 'ctx', 'm', `f${m.toString(8)}`);
    await writeFile(f, 'x');
    await chmod(f, m);
  }
  await mkdir(join(d, 'out'));
  return d;
}

for (const umask of [0o022, 0o077]) {
  test(`tree and single-file copies keep file modes under umask ${umask.toString(8)}`, async () => {
    const d = await source();
    const prev = process.umask(umask);
    try {
      await copyFiles({ srcRoot: join(d, 'ctx'), fromContext: true, sources: ['m/'], dest: '/tree/', workdir: '/', destRoot: join(d, 'out') });
      await copyFiles({ srcRoot: join(d, 'ctx'), fromContext: true, sources: ['m/f666'], dest: '/single', workdir: '/', destRoot: join(d, 'out') });
    } finally {
      process.umask(prev);
    }
    for (const m of modes) {
      const got = (await stat(join(d, 'out', 'tree', `f${m.toString(8)}`))).mode & 0o7777;
      assert.is(got.toString(8), m.toString(8), `f${m.toString(8)}`);
    }
    assert.is(((await stat(join(d, 'out', 'single'))).mode & 0o7777).toString(8), '666');
    await rm(d, { recursive: true, force: true });
  });
}

test('--chmod still applies to every copied file', async () => {
  const d = await source();
  await copyFiles({ srcRoot: join(d, 'ctx'), fromContext: true, sources: ['m/'], dest: '/tree/', workdir: '/', destRoot: join(d, 'out'), chmod: parseModeSpec('0640') });
  for (const m of modes) assert.is(((await stat(join(d, 'out', 'tree', `f${m.toString(8)}`))).mode & 0o7777).toString(8), '640');
  await rm(d, { recursive: true, force: true });
});

test.run();
