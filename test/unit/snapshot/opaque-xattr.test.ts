import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getXattrsUnder } from '../../../src/layer/xattr.js';
import { normaliseOpaqueMarks, opaqueDirs, opaqueIn, parseGetfattr } from '../../../src/snapshot/opaque-xattr.js';
import { sh } from './fs-helpers.js';

test('parseGetfattr reads blocks and undoes octal escapes in names', () => {
  const text = '# file: /t/a b\nuser.overlay.opaque="y"\n\n# file: /t/x\\012y\\\\z\nuser.overlay.opaque="y"\nuser.other="1"\n\n';
  const m = parseGetfattr(text);
  assert.equal([...m.keys()], ['/t/a b', '/t/x\ny\\z']);
  assert.is(m.get('/t/x\ny\\z')!.get('user.other'), '1');
});

test('parseGetfattr decodes UTF-8 names given as octal bytes', () => {
  const m = parseGetfattr('# file: /t/\\303\\251t\\303\\251\nuser.overlay.opaque="y"\n');
  assert.equal([...m.keys()], ['/t/été']);
});

test('opaqueDirs, and opaqueIn of a getXattrsUnder dump (what overlay changes use), find user and trusted marks, including odd names', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-opq-'));
  try {
    const names = ['plain', 'with space', 'new\nline', 'not-opaque', 'wrong-value'];
    for (const n of names) await mkdir(join(dir, n));
    await sh(['setfattr', '-n', 'user.overlay.opaque', '-v', 'y', join(dir, 'plain')]);
    await sh(['setfattr', '-n', 'user.overlay.opaque', '-v', 'y', join(dir, 'with space')]);
    await sh(['setfattr', '-n', 'trusted.overlay.opaque', '-v', 'y', join(dir, 'new\nline')]);
    await sh(['setfattr', '-n', 'user.overlay.opaque', '-v', 'x', join(dir, 'wrong-value')]);
    const want = [join(dir, 'new\nline'), join(dir, 'plain'), join(dir, 'with space')];
    assert.equal([...(await opaqueDirs(names.map((n) => join(dir, n))))].sort(), want);
    assert.equal([...opaqueIn(await getXattrsUnder(dir))].sort(), want);
    assert.equal(await opaqueDirs([]), new Set());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('normaliseOpaqueMarks moves trusted.overlay.opaque to user.overlay.opaque', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-opq-'));
  try {
    await mkdir(join(dir, 'a/b'), { recursive: true });
    await sh(['setfattr', '-n', 'trusted.overlay.opaque', '-v', 'y', join(dir, 'a/b')]);
    await sh(['ln', '-s', '/dangling/link', join(dir, 'a/l')]);
    assert.is(await normaliseOpaqueMarks(dir), 1);
    assert.is((await sh(['getfattr', '--only-values', '-n', 'user.overlay.opaque', join(dir, 'a/b')])).trim(), 'y');
    assert.not.match(await sh(['getfattr', '-d', '-m', '-', join(dir, 'a/b')]), /trusted/);
    assert.is(await normaliseOpaqueMarks(dir), 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
