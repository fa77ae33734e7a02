/**
 * Snapshots and layers together, as the build engine uses them: a base layer tar (GNU tar)
 * is extracted by applyLayer into a committed snapshot, a step changes its rootfs, changes()
 * feeds writeLayer, and that layer applied on the base (through createCommitted again)
 * reproduces the step's tree — for both snapshotters.
 */
import { createReadStream } from 'node:fs';
import { chmod, chown, link, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openContentStore } from '../../src/content/index.js';
import { applyLayer, writeLayer } from '../../src/layer/index.js';
import { createSnapshotter, type FillInfo, type SnapshotterKind } from '../../src/snapshot/index.js';
import { describeTree, mountsUnder, sh } from '../unit/snapshot/fs-helpers.js';

function fillFrom(open: () => Promise<Readable> | Readable) {
  return async (dir: string, mode: 'overlay' | 'copy', info: FillInfo) => {
    await applyLayer(await open(), dir, { whiteoutMode: mode === 'overlay' ? 'overlay' : 'delete', overlayOpaqueXattr: info.opaqueXattr });
  };
}

for (const kind of ['overlay', 'copy'] as SnapshotterKind[]) {
  const t = suite<{ work: string }>(`snapshot → layer → snapshot (${kind})`);
  t.before.each(async (ctx) => {
    ctx.work = await mkdtemp(join(tmpdir(), `kiln-snaplayer-${kind}-`));
  });
  t.after.each(async (ctx) => {
    for (const m of (await mountsUnder(ctx.work)).reverse()) await sh(['umount', '-l', m]).catch(() => undefined);
    await rm(ctx.work, { recursive: true, force: true });
  });

  t('a step\'s changes written as a layer and applied on the parent give the step\'s tree', async ({ work }) => {
    // base layer made by GNU tar from a fixture tree
    const src = join(work, 'src');
    await mkdir(join(src, 'etc/sub/deep'), { recursive: true });
    await writeFile(join(src, 'etc/passwd'), 'root:x:0:0\n');
    await writeFile(join(src, 'etc/sub/a'), 'a');
    await writeFile(join(src, 'etc/sub/deep/b'), 'b');
    await mkdir(join(src, 'usr/bin'), { recursive: true });
    await writeFile(join(src, 'usr/bin/tool'), 'tool', { mode: 0o755 });
    await link(join(src, 'usr/bin/tool'), join(src, 'usr/bin/tool2'));
    await symlink('tool', join(src, 'usr/bin/t'));
    await mkdir(join(src, 'home/u'), { recursive: true });
    await chown(join(src, 'home/u'), 1000, 1000);
    await writeFile(join(src, 'home/u/.rc'), 'rc');
    await sh(['setfattr', '-n', 'user.note', '-v', 'base', join(src, 'etc/passwd')]);
    const baseTar = join(work, 'base.tar');
    await sh(['tar', '--xattrs', '--xattrs-include=user.*', '--numeric-owner', '-C', src, '-cf', baseTar, '.']);

    const s = await createSnapshotter({ root: join(work, 'root'), kind });
    assert.is(s.kind, kind);
    await s.createCommitted('base', undefined, fillFrom(() => createReadStream(baseTar)));

    const step = await s.prepare('step', 'base');
    const r = step.path;
    await writeFile(join(r, 'etc/passwd'), 'root:x:0:0\nu:x:1000:1000\n');
    await rm(join(r, 'etc/sub'), { recursive: true });
    await mkdir(join(r, 'etc/sub'));
    await writeFile(join(r, 'etc/sub/fresh'), 'fresh');
    await rm(join(r, 'usr/bin/t'));
    await link(join(r, 'usr/bin/tool'), join(r, 'usr/bin/tool3'));
    await chmod(join(r, 'home/u/.rc'), 0o600);
    await mkdir(join(r, 'opt/app'), { recursive: true });
    await writeFile(join(r, 'opt/app/run'), 'run', { mode: 0o755 });
    await sh(['setfattr', '-n', 'user.note', '-v', 'step', join(r, 'opt/app/run')]);
    const { root, changes } = await s.changes('step');

    const store = openContentStore(join(work, 'store'));
    const layer = await writeLayer(store, { root, changes, compression: 'gzip' });
    const listing = await sh(['sh', '-c', 'gzip -dc "$1" | tar -tv', 'sh', join(work, 'store', 'blobs', 'sha256', layer.descriptor.digest.slice(7))]);
    assert.match(listing, /etc\/\.wh\.\.wh\.\.opq|etc\/sub\/\.wh\.\.wh\.\.opq|etc\/sub\/\.wh\.a/, 'the re-created dir hides the old content');
    assert.match(listing, /usr\/bin\/\.wh\.t\b/, 'the deleted symlink is a whiteout');
    assert.not.match(listing, /overlay/, 'no overlay-private data in the layer');

    const stepTree = await describeTree(r);
    await step.release();
    await s.commit('step', 'step-committed');
    await s.createCommitted('replayed', 'base', fillFrom(() => store.open(layer.descriptor.digest)));
    const check = await s.prepare('check', 'replayed');
    const replayedTree = await describeTree(check.path);
    // tar keeps mtimes to the second
    const seconds = (tree: Record<string, string>) => Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, v.replace(/ m(\d+)/, (_m, ns: string) => ` m${BigInt(ns) / 1_000_000_000n}`)]));
    assert.equal(seconds(replayedTree), seconds(stepTree));
    assert.equal((await readdir(join(check.path, 'etc/sub'))).sort(), ['fresh']);
    await check.release();
    await s.remove('check');
    assert.equal(await mountsUnder(work), []);
  });

  t.run();
}
