/**
 * One behaviour suite, run against both snapshotters: whatever a step does to its rootfs,
 * changes() must describe it so that replaying the changes on the parent gives the same tree.
 */
import { chmod, chown, link, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lstatSync } from 'node:fs';
import { openContentStore } from '../../src/content/index.js';
import { writeLayer } from '../../src/layer/index.js';
import type { Change } from '../../src/layer/types.js';
import { createSnapshotter, type FillInfo, type Rootfs, type Snapshotter, type SnapshotterKind } from '../../src/snapshot/index.js';
import { describeTree, mountsUnder, replay, sh, unexpectedChanges } from '../unit/snapshot/fs-helpers.js';

interface Ctx {
  root: string;
  work: string;
  s: Snapshotter;
  steps: number;
}

export interface LayerSpec {
  dirs?: string[];
  files?: Record<string, string>;
  symlinks?: Record<string, string>;
  /** Deleted paths (overlay: 0/0 whiteout device; copy: removed). */
  deletes?: string[];
  /** Directories whose parent content is hidden (overlay: opaque xattr; copy: emptied). */
  opaque?: string[];
}

/** What a layer applier does in each fill mode, written by hand for the test. */
export async function fillLayer(dir: string, mode: 'overlay' | 'copy', info: FillInfo, spec: LayerSpec): Promise<void> {
  for (const p of spec.deletes ?? []) {
    const t = join(dir, p);
    if (mode === 'copy') await rm(t, { recursive: true });
    else {
      await mkdir(join(t, '..'), { recursive: true });
      await sh(['mknod', t, 'c', '0', '0']);
    }
  }
  for (const p of spec.opaque ?? []) {
    const t = join(dir, p);
    if (mode === 'copy') await rm(t, { recursive: true, force: true });
    await mkdir(t, { recursive: true });
    if (mode === 'overlay') await sh(['setfattr', '-n', info.opaqueXattr, '-v', 'y', t]);
  }
  for (const p of spec.dirs ?? []) await mkdir(join(dir, p), { recursive: true });
  for (const [p, text] of Object.entries(spec.files ?? {})) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), text);
  }
  for (const [p, target] of Object.entries(spec.symlinks ?? {})) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await symlink(target, join(dir, p));
  }
}

/** The base every test starts from (committed "base"). */
async function fillBase(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc/sub/deep'), { recursive: true });
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\n');
  await writeFile(join(dir, 'etc/sub/a'), 'a');
  await writeFile(join(dir, 'etc/sub/b'), 'b');
  await writeFile(join(dir, 'etc/sub/deep/c'), 'c');
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  await mkdir(join(dir, 'usr/lib'), { recursive: true });
  await writeFile(join(dir, 'usr/bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  await writeFile(join(dir, 'usr/lib/libx.so.1'), 'ELF1');
  await writeFile(join(dir, 'usr/lib/libx.so.2'), 'ELF2');
  await symlink('libx.so.1', join(dir, 'usr/lib/libx.so'));
  await mkdir(join(dir, 'data'));
  await writeFile(join(dir, 'data/hl1'), 'shared');
  await link(join(dir, 'data/hl1'), join(dir, 'data/hl2'));
  await mkdir(join(dir, 'var/dir-to-file/inner'), { recursive: true });
  await writeFile(join(dir, 'var/dir-to-file/inner/x'), 'x');
  await writeFile(join(dir, 'var/file-to-dir'), 'file');
  await writeFile(join(dir, 'xattr-file'), 'has xattrs');
  await sh(['setfattr', '-n', 'user.kiln.test', '-v', 'one', join(dir, 'xattr-file')]);
}

function has(changes: Change[], want: Change): boolean {
  return changes.some((c) => c.kind === want.kind && c.path === want.path && Boolean(c.opaque) === Boolean(want.opaque));
}

function assertHas(changes: Change[], ...wanted: Change[]): void {
  for (const w of wanted) assert.ok(has(changes, w), `expected ${JSON.stringify(w)} in ${JSON.stringify(changes)}`);
}

function snapshotSuite(kind: SnapshotterKind) {
  const t = suite<Ctx>(`snapshotter (${kind})`);

  t.before.each(async (ctx) => {
    ctx.work = await mkdtemp(join(tmpdir(), `kiln-snap-${kind}-`));
    ctx.root = join(ctx.work, 'root');
    ctx.s = await createSnapshotter({ root: ctx.root, kind });
    ctx.steps = 0;
    await ctx.s.createCommitted('base', undefined, (dir) => fillBase(dir));
  });
  t.after.each(async (ctx) => {
    for (const m of (await mountsUnder(ctx.work)).reverse()) await sh(['umount', '-l', m]).catch(() => undefined);
    await rm(ctx.work, { recursive: true, force: true });
  });

  /**
   * Prepare a step on `parent`, remember its view, run `mutate`, then check that replaying
   * changes() on the remembered view gives the step's view, and that nothing outside
   * `touched` (and their ancestors) is reported.
   */
  async function step(ctx: Ctx, parent: string | undefined, touched: string[], mutate: (root: string) => Promise<void>): Promise<{ changes: Change[]; root: string; key: string; rootfs: Rootfs }> {
    const key = `step-${++ctx.steps}`;
    const rootfs = await ctx.s.prepare(key, parent);
    const before = join(ctx.work, `${key}-before`);
    await sh(['cp', '-a', rootfs.path, before]);
    await mutate(rootfs.path);
    const { root, changes } = await ctx.s.changes(key);
    const replayed = join(ctx.work, `${key}-replayed`);
    await replay(before, root, changes, replayed);
    assert.equal(await describeTree(replayed), await describeTree(rootfs.path), 'replaying the changes on the parent gives the step\'s tree');
    assert.equal(unexpectedChanges(changes, touched), [], 'only touched paths and their ancestors change');
    const sorted = [...changes].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    assert.equal(changes, sorted, 'changes are sorted by path');
    assert.is(new Set(changes.map((c) => c.path)).size, changes.length, 'one change per path');
    return { changes, root, key, rootfs };
  }

  t('reports the kind it is', (ctx) => {
    assert.is(ctx.s.kind, kind);
    assert.type(ctx.s.reason, 'string');
  });

  t('an untouched rootfs has no changes and shows the parent', async (ctx) => {
    const { changes, rootfs } = await step(ctx, 'base', [], async () => undefined);
    assert.equal(changes, []);
    assert.is(await readFile(join(rootfs.path, 'etc/sub/deep/c'), 'utf8'), 'c');
  });

  t('add, modify and delete files', async (ctx) => {
    const { changes } = await step(ctx, 'base', ['new-file', 'etc/passwd', 'etc/group'], async (r) => {
      await writeFile(join(r, 'new-file'), 'new');
      await writeFile(join(r, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
      await rm(join(r, 'etc/group'));
    });
    assertHas(changes, { kind: 'add', path: 'new-file' }, { kind: 'modify', path: 'etc/passwd' }, { kind: 'delete', path: 'etc/group' });
  });

  t('a same-size rewrite right after prepare is seen; so is content changed under a restored mtime', async (ctx) => {
    const { changes } = await step(ctx, 'base', ['usr/lib/libx.so.1', 'usr/lib/libx.so.2'], async (r) => {
      await writeFile(join(r, 'usr/lib/libx.so.1'), 'ELF9');
      const p = join(r, 'usr/lib/libx.so.2');
      await sh(['cp', '-p', p, join(r, '..', 'mtime-ref')]);
      await writeFile(p, 'ELF8');
      await sh(['touch', '-r', join(r, '..', 'mtime-ref'), p]);
      await rm(join(r, '..', 'mtime-ref'));
    });
    assertHas(changes, { kind: 'modify', path: 'usr/lib/libx.so.1' }, { kind: 'modify', path: 'usr/lib/libx.so.2' });
  });

  t('directories: add nested, delete a whole tree as one change', async (ctx) => {
    const { changes } = await step(ctx, 'base', ['opt/a/b/c', 'etc/sub'], async (r) => {
      await mkdir(join(r, 'opt/a/b/c'), { recursive: true });
      await writeFile(join(r, 'opt/a/b/c/f'), 'deep');
      await rm(join(r, 'etc/sub'), { recursive: true });
    });
    assertHas(changes, { kind: 'add', path: 'opt' }, { kind: 'add', path: 'opt/a/b/c/f' }, { kind: 'delete', path: 'etc/sub' });
    assert.not.ok(changes.some((c) => c.path.startsWith('etc/sub/')), 'children of a deleted dir are not listed');
  });

  t('nested changes deep inside existing directories', async (ctx) => {
    const { changes } = await step(ctx, 'base', ['etc/sub/deep/c', 'etc/sub/deep/d'], async (r) => {
      await writeFile(join(r, 'etc/sub/deep/c'), 'c2');
      await writeFile(join(r, 'etc/sub/deep/d'), 'd');
    });
    assertHas(changes, { kind: 'modify', path: 'etc/sub/deep/c' }, { kind: 'add', path: 'etc/sub/deep/d' });
  });

  t('symlinks: add, retarget, delete', async (ctx) => {
    const { changes, root } = await step(ctx, 'base', ['usr/lib/libx.so', 'usr/lib/liby.so', 'usr/bin/alias'], async (r) => {
      await rm(join(r, 'usr/lib/libx.so'));
      await symlink('libx.so.2', join(r, 'usr/lib/libx.so'));
      await symlink('/nowhere/at/all', join(r, 'usr/lib/liby.so'));
      await symlink('tool', join(r, 'usr/bin/alias'));
      await rm(join(r, 'usr/bin/alias'));
    });
    assertHas(changes, { kind: 'modify', path: 'usr/lib/libx.so' }, { kind: 'add', path: 'usr/lib/liby.so' });
    assert.not.ok(changes.some((c) => c.path === 'usr/bin/alias'), 'a link created and removed in the step is no change');
    assert.ok(lstatSync(join(root, 'usr/lib/liby.so')).isSymbolicLink());
  });

  t('hardlinks: a new link to an old file and a new pair share an inode in root', async (ctx) => {
    const { changes, root } = await step(ctx, 'base', ['data/hl1', 'data/hl2', 'data/hl3', 'data/n1', 'data/n2'], async (r) => {
      await link(join(r, 'data/hl1'), join(r, 'data/hl3'));
      await writeFile(join(r, 'data/n1'), 'pair');
      await link(join(r, 'data/n1'), join(r, 'data/n2'));
    });
    assertHas(changes, { kind: 'add', path: 'data/hl3' }, { kind: 'add', path: 'data/n1' }, { kind: 'add', path: 'data/n2' });
    assert.is(lstatSync(join(root, 'data/n1')).ino, lstatSync(join(root, 'data/n2')).ino);
    assert.ok(has(changes, { kind: 'modify', path: 'data/hl1' }), 'the old name of a newly linked inode is part of the layer');
    assert.is(lstatSync(join(root, 'data/hl1')).ino, lstatSync(join(root, 'data/hl3')).ino);
  });

  t('chmod-only and chown-only changes', async (ctx) => {
    const { changes } = await step(ctx, 'base', ['etc/passwd', 'usr/bin/tool', 'etc/sub'], async (r) => {
      await chmod(join(r, 'etc/passwd'), 0o600);
      await chown(join(r, 'usr/bin/tool'), 1234, 5678);
      await chmod(join(r, 'etc/sub'), 0o700);
    });
    assertHas(changes, { kind: 'modify', path: 'etc/passwd' }, { kind: 'modify', path: 'usr/bin/tool' }, { kind: 'modify', path: 'etc/sub' });
    assert.not.ok(changes.some((c) => c.path.startsWith('etc/sub/')), 'chmod of a dir does not list its children');
  });

  t('replace a directory with a file and a file with a directory', async (ctx) => {
    const { changes } = await step(ctx, 'base', ['var/dir-to-file', 'var/file-to-dir'], async (r) => {
      await rm(join(r, 'var/dir-to-file'), { recursive: true });
      await writeFile(join(r, 'var/dir-to-file'), 'now a file');
      await rm(join(r, 'var/file-to-dir'));
      await mkdir(join(r, 'var/file-to-dir'));
      await writeFile(join(r, 'var/file-to-dir/child'), 'child');
    });
    assertHas(changes, { kind: 'modify', path: 'var/dir-to-file' }, { kind: 'add', path: 'var/file-to-dir/child' });
    assert.ok(changes.some((c) => c.path === 'var/file-to-dir' && c.kind === 'modify'));
    assert.not.ok(changes.some((c) => c.path.startsWith('var/dir-to-file/')));
  });

  t('delete a directory then re-create it: old content stays hidden', async (ctx) => {
    const { changes, rootfs } = await step(ctx, 'base', ['etc/sub'], async (r) => {
      await rm(join(r, 'etc/sub'), { recursive: true });
      await mkdir(join(r, 'etc/sub'));
      await writeFile(join(r, 'etc/sub/fresh'), 'fresh');
    });
    assertHas(changes, { kind: 'add', path: 'etc/sub/fresh' });
    const sub = changes.find((c) => c.path === 'etc/sub')!;
    assert.ok(sub, 'etc/sub is a change');
    // overlay marks it opaque; copy sees a new inode, or (inode number reused) that no old entry survives
    assert.ok(sub.opaque, 'the re-created dir is opaque');
    assert.not.ok(changes.some((c) => c.kind === 'delete'), 'no per-entry deletes under an opaque dir');
    assert.equal((await readdir(join(rootfs.path, 'etc/sub'))).sort(), ['fresh']);
  });

  t('mv of a directory from the parent, and a fifo', async (ctx) => {
    const { changes, rootfs } = await step(ctx, 'base', ['etc/sub', 'etc/moved', 'run/fifo'], async (r) => {
      await sh(['mv', join(r, 'etc/sub'), join(r, 'etc/moved')]);
      await mkdir(join(r, 'run'));
      await sh(['mkfifo', join(r, 'run/fifo')]);
    });
    assertHas(changes, { kind: 'delete', path: 'etc/sub' }, { kind: 'add', path: 'etc/moved' }, { kind: 'add', path: 'run/fifo' });
    assert.is(await readFile(join(rootfs.path, 'etc/moved/deep/c'), 'utf8'), 'c');
  });

  t('xattrs: new and changed values are changes and readable from root', async (ctx) => {
    const { changes, root } = await step(ctx, 'base', ['etc/passwd', 'xattr-file'], async (r) => {
      await sh(['setfattr', '-n', 'user.kiln.added', '-v', 'yes', join(r, 'etc/passwd')]);
      await sh(['setfattr', '-n', 'user.kiln.test', '-v', 'two', join(r, 'xattr-file')]);
    });
    assertHas(changes, { kind: 'modify', path: 'etc/passwd' }, { kind: 'modify', path: 'xattr-file' });
    assert.match(await sh(['getfattr', '--only-values', '-n', 'user.kiln.test', join(root, 'xattr-file')]), /^two$/);
    // The overlay snapshotter hands the writer the xattrs it read for the opaque marks: the layer
    // must be the one the writer makes when it reads them itself.
    const { xattrs } = await ctx.s.changes(`step-${ctx.steps}`);
    assert.is(xattrs !== undefined, kind === 'overlay');
    if (xattrs) {
      assert.is(xattrs.get(join(root, 'xattr-file'))?.get('user.kiln.test')?.toString(), 'two');
      const store = openContentStore(join(ctx.work, 'store'));
      const opts = { root, changes, compression: 'gzip' as const, sourceDateEpoch: 0 };
      const own = await writeLayer(store, opts);
      const given = await writeLayer(store, { ...opts, xattrs });
      assert.is(given.diffId, own.diffId);
      assert.is(given.descriptor.digest, own.descriptor.digest);
    }
  });

  t('FROM scratch: prepare without parent, everything is an add', async (ctx) => {
    const { changes } = await step(ctx, undefined, ['bin', 'bin/sh'], async (r) => {
      await mkdir(join(r, 'bin'));
      await writeFile(join(r, 'bin/sh'), 'sh');
    });
    assert.equal(changes, [
      { kind: 'add', path: 'bin' },
      { kind: 'add', path: 'bin/sh' },
    ]);
  });

  t('committed parents chained 3 deep (layer with whiteouts, then two committed steps)', async (ctx) => {
    // layer 2 (createCommitted, like applyLayer) deletes etc/group, hides etc/sub's old content, adds files
    await ctx.s.createCommitted('layer2', 'base', (dir, mode, info) => {
      assert.is(mode, kind);
      assert.is(info.opaqueXattr, 'user.overlay.opaque');
      return fillLayer(dir, mode, info, { deletes: ['etc/group', 'usr/lib/libx.so.2'], opaque: ['etc/sub'], files: { 'etc/sub/l2': 'l2', 'etc/motd': 'hello' }, symlinks: { 'etc/dangling': '/does/not/exist' } });
    });
    const s1 = await step(ctx, 'layer2', ['etc/motd', 'home/user/.profile'], async (r) => {
      assert.equal((await readdir(join(r, 'etc/sub'))).sort(), ['l2']);
      assert.not.ok(await readFile(join(r, 'etc/group')).catch(() => undefined), 'etc/group is deleted by layer 2');
      await writeFile(join(r, 'etc/motd'), 'hello from step 1');
      await mkdir(join(r, 'home/user'), { recursive: true });
      await writeFile(join(r, 'home/user/.profile'), 'PS1=$');
    });
    await ctx.s.commit(s1.key, 'step1');
    const s2 = await step(ctx, 'step1', ['etc/motd', 'etc/group', 'usr/lib/libx.so.2'], async (r) => {
      assert.is(await readFile(join(r, 'etc/motd'), 'utf8'), 'hello from step 1');
      assert.is(await readFile(join(r, 'home/user/.profile'), 'utf8'), 'PS1=$');
      await rm(join(r, 'etc/motd'));
      await writeFile(join(r, 'etc/group'), 'back\n');
      await writeFile(join(r, 'usr/lib/libx.so.2'), 'back');
    });
    assertHas(s2.changes, { kind: 'delete', path: 'etc/motd' }, { kind: 'add', path: 'etc/group' }, { kind: 'add', path: 'usr/lib/libx.so.2' });
    await ctx.s.commit(s2.key, 'step2');
    const top = await ctx.s.prepare('top', 'step2');
    const view = await describeTree(top.path);
    assert.not.ok('etc/motd' in view);
    assert.equal(Object.keys(view).filter((p) => p.startsWith('etc/sub/')), ['etc/sub/l2']);
    assert.is(await readFile(join(top.path, 'etc/group'), 'utf8'), 'back\n');
    assert.is(await readFile(join(top.path, 'etc/sub/l2'), 'utf8'), 'l2');
    assert.equal((await ctx.s.changes('top')).changes, []);
    await top.release();
    await ctx.s.remove('top');
  });

  t('commit is idempotent: a second commit of the same id keeps the first', async (ctx) => {
    const a = await ctx.s.prepare('a', 'base');
    await writeFile(join(a.path, 'who'), 'a');
    await ctx.s.commit('a', 'same');
    const b = await ctx.s.prepare('b', 'base');
    await writeFile(join(b.path, 'who'), 'b');
    await ctx.s.commit('b', 'same');
    const c = await ctx.s.prepare('c', 'same');
    assert.is(await readFile(join(c.path, 'who'), 'utf8'), 'a');
    await c.release();
    await ctx.s.remove('c');
    assert.equal(await readdir(join(ctx.root, 'snapshots', kind, '.active')), []);
  });

  t('createCommitted runs fill once when raced, cleans up after a failing fill', async (ctx) => {
    let calls = 0;
    const fill = async (dir: string) => {
      calls++;
      await new Promise((r) => setTimeout(r, 50));
      await writeFile(join(dir, 'layer-file'), 'x');
    };
    await Promise.all([1, 2, 3].map(() => ctx.s.createCommitted('raced', 'base', fill)));
    assert.is(calls, 1);
    assert.ok(await ctx.s.exists('raced'));
    await ctx.s.createCommitted('raced', 'base', fill);
    assert.is(calls, 1, 'idempotent');

    await ctx.s.createCommitted('broken', 'base', async (dir) => {
      await writeFile(join(dir, 'half'), 'half');
      throw new Error('extraction failed');
    }).then(
      () => assert.unreachable('should fail'),
      (err: Error) => assert.is(err.message, 'extraction failed'),
    );
    assert.not.ok(await ctx.s.exists('broken'));
    assert.equal(await readdir(join(ctx.root, 'snapshots', kind, '.tmp')), []);
    await ctx.s.createCommitted('broken', 'base', fill);
    assert.ok(await ctx.s.exists('broken'));
  });

  t('release and remove leave no mounts and no temp dirs', async (ctx) => {
    const a = await ctx.s.prepare('a', 'base');
    const b = await ctx.s.prepare('b', 'base');
    const c = await ctx.s.prepare('c', undefined); // no parent: a plain dir, never mounted
    await writeFile(join(a.path, 'x'), 'x');
    if (kind === 'overlay') assert.equal((await mountsUnder(ctx.root)).length, 2);
    await a.release();
    await a.release();
    assert.equal(await mountsUnder(ctx.root), [b.path].filter(() => kind === 'overlay'));
    await c.release();
    await ctx.s.remove('c');
    assertHas((await ctx.s.changes('a')).changes, { kind: 'add', path: 'x' });
    await ctx.s.remove('a');
    await ctx.s.remove('b');
    await b.release();
    assert.equal(await mountsUnder(ctx.root), []);
    assert.equal(await readdir(join(ctx.root, 'snapshots', kind, '.active')), []);
    assert.equal(await readdir(join(ctx.root, 'snapshots', kind, '.tmp')), []);
  });

  t('errors: unknown parent, duplicate key, unknown key, removing a parent in use', async (ctx) => {
    await ctx.s.prepare('nope', 'no-such-parent').then(
      () => assert.unreachable(),
      (e: { code: string }) => assert.is(e.code, 'SNAPSHOT_NOT_FOUND'),
    );
    const a = await ctx.s.prepare('dup', 'base');
    await ctx.s.prepare('dup', 'base').then(
      () => assert.unreachable(),
      (e: { code: string }) => assert.is(e.code, 'SNAPSHOT_EXISTS'),
    );
    await ctx.s.changes('missing').then(
      () => assert.unreachable(),
      (e: { code: string }) => assert.is(e.code, 'SNAPSHOT_NOT_FOUND'),
    );
    await ctx.s.remove('base').then(
      () => assert.unreachable(),
      (e: { code: string }) => assert.is(e.code, 'SNAPSHOT_IN_USE'),
    );
    await a.release();
    await ctx.s.remove('dup');
    await ctx.s.remove('base');
    assert.not.ok(await ctx.s.exists('base'));
    assert.equal(await mountsUnder(ctx.root), []);
  });

  t('ids that are not plain tokens are stored under a hashed name', async (ctx) => {
    const id = 'weird id/with slashes, commas:and colons';
    await ctx.s.createCommitted(id, 'base', (dir) => writeFile(join(dir, 'w'), 'w'));
    assert.ok(await ctx.s.exists(id));
    const r = await ctx.s.prepare('k,with:odd/chars', id);
    assert.is(await readFile(join(r.path, 'w'), 'utf8'), 'w');
    await ctx.s.commit('k,with:odd/chars', 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
    assert.ok(await ctx.s.exists('sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'));
    assert.equal(await mountsUnder(ctx.root), []);
  });

  return t;
}

snapshotSuite('overlay').run();
snapshotSuite('copy').run();
