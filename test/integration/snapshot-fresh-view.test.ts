// Snapshotter.prepareFresh (a step that only writes below a new path needs no mount) and
// Snapshotter.view (a read-only rootfs that is the committed dir itself where it can be).
import { lstatSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile, chown, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSnapshotter, type Snapshotter } from '../../src/snapshot/index.js';
import { describeTree, mountsUnder, sh } from '../unit/snapshot/fs-helpers.js';

const t = suite<{ work: string; root: string }>('snapshot prepareFresh and view');

t.before.each(async (ctx) => {
  ctx.work = await mkdtemp(join(tmpdir(), 'kiln-fresh-'));
  ctx.root = join(ctx.work, 'root');
});
t.after.each(async (ctx) => {
  for (const m of (await mountsUnder(ctx.work)).reverse()) await sh(['umount', '-l', m]).catch(() => undefined);
  await rm(ctx.work, { recursive: true, force: true });
});

const OLD = new Date('2001-02-03T04:05:06Z');

/**
 * L1: /usr (0750, 1000:1001, an xattr, old times), /usr/share, /o/1/keep, a file /f, /lnk -> usr.
 * L2: /usr/local (0700, old times), /o opaque with only /o/2, a whiteout over /f.
 */
async function chain(s: Snapshotter): Promise<void> {
  await s.createCommitted('L1', undefined, async (dir) => {
    await mkdir(join(dir, 'usr/share'), { recursive: true });
    await sh(['setfattr', '-n', 'user.kiln-test', '-v', 'from-L1', join(dir, 'usr')]);
    await chown(join(dir, 'usr'), 1000, 1001);
    await chmod(join(dir, 'usr'), 0o750);
    await mkdir(join(dir, 'o/1'), { recursive: true });
    await writeFile(join(dir, 'o/1/keep'), 'k');
    await writeFile(join(dir, 'f'), 'f');
    await symlink('usr', join(dir, 'lnk'));
    await utimes(join(dir, 'usr/share'), OLD, OLD);
    await utimes(join(dir, 'usr'), OLD, OLD);
  });
  await s.createCommitted('L2', 'L1', async (dir, _mode, info) => {
    await mkdir(join(dir, 'usr/local'), { recursive: true });
    await chmod(join(dir, 'usr/local'), 0o700);
    await utimes(join(dir, 'usr/local'), OLD, OLD);
    await mkdir(join(dir, 'o/2'), { recursive: true });
    await sh(['setfattr', '-n', info.opaqueXattr, '-v', 'y', join(dir, 'o')]);
    await sh(['mknod', join(dir, 'f'), 'c', '0', '0']);
    // L1's times on /usr, as a RUN that only touched /usr/local would leave them.
    await chown(join(dir, 'usr'), 1000, 1001);
    await chmod(join(dir, 'usr'), 0o750);
    await sh(['setfattr', '-n', 'user.kiln-test', '-v', 'from-L2', join(dir, 'usr')]);
    await utimes(join(dir, 'usr'), OLD, OLD);
  });
}

/** What a step writing `file` leaves: the upper dir's tree (file times aside), the changes, /usr's mtime. */
async function afterWriting(s: Snapshotter, key: string, root: string, file: string): Promise<{ tree: Record<string, string>; changes: string[]; usrTime: number }> {
  await mkdir(join(root, file, '..'), { recursive: true });
  await writeFile(join(root, file), 'new');
  const { root: upper, changes } = await s.changes(key);
  const tree = Object.fromEntries(Object.entries(await describeTree(upper)).map(([k, v]) => [k, v.replace(/ m\d+/, '')]));
  return { tree, changes: changes.map((c) => `${c.kind} ${c.path}`), usrTime: lstatSync(join(upper, 'usr')).mtimeMs };
}

t('overlay: a write below a new path gives the tree a mount gives, without mounting', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  await chain(s);
  const mounted = await s.prepare('m', 'L2');
  const viaMount = await afterWriting(s, 'm', mounted.path, 'usr/local/new/bin/tool');
  const fresh = await s.prepareFresh!('f', 'L2', '/usr/local/new/bin');
  assert.ok(fresh, 'usr/local/new is in no layer');
  assert.equal((await mountsUnder(ctx.work)).length, 1, 'only the other snapshot is mounted');
  const direct = await afterWriting(s, 'f', fresh.path, 'usr/local/new/bin/tool');
  assert.equal(direct.tree, viaMount.tree, 'owner, mode and xattrs copied up as overlay does');
  assert.is(direct.tree['usr'], `dir 750 1000:1001 xattrs{user.kiln-test=0x${Buffer.from('from-L2').toString('hex')}}`);
  assert.equal(direct.changes, viaMount.changes);
  assert.is(viaMount.usrTime, OLD.getTime(), 'overlay keeps the lower times of a copied-up directory');
  assert.is(direct.usrTime, OLD.getTime(), 'and so does the copy-up without a mount');
  await fresh.release();
  await s.commit('f', 'L3');
  const next = await s.prepare('n', 'L3');
  assert.is(await readFile(join(next.path, 'usr/local/new/bin/tool'), 'utf8'), 'new');
  assert.ok(lstatSync(join(next.path, 'usr/share')).isDirectory(), 'the lower /usr still shows through');
  await next.release();
  await mounted.release();
});

t('overlay: no fresh rootfs where the path exists, crosses a whiteout, a link, a file or an opaque dir', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  await chain(s);
  for (const dest of ['/usr/local', '/', '/f/x', '/lnk/new', '/lnk/share/new', '/o/1/new', '/usr/../etc']) {
    assert.is(await s.prepareFresh!(`k${dest.replace(/\W/g, '_')}`, 'L2', dest), undefined, dest);
  }
  assert.equal(await s.listActiveParents(), [], 'nothing is left active');
  const top = await s.prepareFresh!('top', 'L2', '/srv/a');
  assert.ok(top, 'a new top-level directory');
  assert.equal(await describeTree(top.path), {}, 'nothing is copied up for it');
});

t('overlay: a view of a one-layer chain is the committed dir, holds its parent, and mounts nothing', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  await chain(s);
  const v = await s.view('v1', 'L1');
  assert.equal(await mountsUnder(ctx.work), []);
  assert.is(lstatSync(join(v.path, 'o/1/keep')).ino, lstatSync(join(ctx.root, 'snapshots/overlay/L1/fs/o/1/keep')).ino);
  await s.remove('L2');
  await s.remove('L1').then(
    () => assert.unreachable('a viewed snapshot was removed'),
    (e: { code: string }) => assert.is(e.code, 'SNAPSHOT_IN_USE'),
  );
  await v.release();
  await s.remove('v1');
  await s.remove('L1');
});

t('overlay: a view of a longer chain is a mount of the merged tree', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  await chain(s);
  const v = await s.view('v2', 'L2');
  assert.equal(await mountsUnder(ctx.work), [v.path]);
  assert.is(lstatSync(join(v.path, 'f'), { throwIfNoEntry: false }), undefined, 'the whiteout hides /f');
  await v.release();
  await s.remove('v2');
});

t('copy: a view is the committed tree, not a copy of it', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'copy' });
  await s.createCommitted('base', undefined, (d) => writeFile(join(d, 'x'), 'x'));
  const v = await s.view('v', 'base');
  assert.is(lstatSync(join(v.path, 'x')).ino, lstatSync(join(ctx.root, 'snapshots/copy/base/fs/x')).ino);
  await s.remove('base').then(
    () => assert.unreachable('a viewed snapshot was removed'),
    (e: { code: string }) => assert.is(e.code, 'SNAPSHOT_IN_USE'),
  );
  await s.remove('v');
  await s.remove('base');
});

t.run();
