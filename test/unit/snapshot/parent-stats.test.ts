import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { statThroughLayers } from '../../../src/snapshot/parent-stats.js';

const test = suite('snapshot: parent stats through layers');

test('the topmost layer decides; whiteouts, non-directory and opaque parents above hide; symlinked parents are never followed', async () => {
  if (process.getuid?.() !== 0) assert.unreachable('mknod of whiteouts needs root: run the suite as root (CI does)');
  const dir = mkdtempSync(join(tmpdir(), 'kiln-parent-stats-'));
  try {
    const [top, mid, bottom] = ['top', 'mid', 'bottom'].map((n) => join(dir, n)) as [string, string, string];
    for (const d of ['etc', 'a/b', 'c', 'd/e', 'k/l']) mkdirSync(join(bottom, d), { recursive: true });
    symlinkSync('/etc', join(bottom, 's'));
    mkdirSync(join(mid, 'a'), { recursive: true });
    execFileSync('setfattr', ['-n', 'user.overlay.opaque', '-v', 'y', join(mid, 'a')]);
    execFileSync('mknod', ['-m', '000', join(mid, 'c'), 'c', '0', '0']);
    writeFileSync(join(mid, 'd'), 'a file where a directory was');
    mkdirSync(join(mid, 'k'));
    mkdirSync(join(top, 't'), { recursive: true, mode: 0o750 });
    const got = await statThroughLayers([top, mid, bottom], ['etc', 'a/b', 'c', 'd/e', 'k/l', 's/ssl', 't', 'missing'], true);
    assert.ok(got.get('etc')?.isDirectory(), 'only in the bottom layer, nothing above hides it');
    assert.is(got.get('k/l')?.ino, lstatSync(join(bottom, 'k/l')).ino, 'a parent directory above that is not opaque lets it through');
    assert.is(got.get('a/b'), undefined, 'hidden by an opaque parent above');
    assert.is(got.get('c'), undefined, 'whited out above');
    assert.is(got.get('d/e'), undefined, 'a file replaces its parent above');
    assert.is(got.get('s/ssl'), undefined, 'a symlinked parent: not followed onto the host');
    assert.is((got.get('t')!.mode & 0o777), 0o750);
    assert.is(got.get('missing'), undefined);
    const plain = await statThroughLayers([mid], ['c'], false);
    assert.ok(plain.get('c')?.isCharacterDevice(), 'without whiteouts a 0/0 device is a device');
    assert.equal([...(await statThroughLayers([], ['etc'], true)).values()], [undefined]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
