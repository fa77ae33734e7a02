/** Overlay-only behaviour: detection, deep chains, crashes, cross-process races, foreign opaque marks. */
import { lstatSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSnapshotter, OverlaySnapshotter, overlaySupport } from '../../src/snapshot/index.js';
import { runChild } from '../unit/snapshot/child.js';
import { describeTree, kernelHasVolatile, mountsUnder, sh } from '../unit/snapshot/fs-helpers.js';

const t = suite<{ work: string; root: string }>('overlay snapshotter');

t.before.each(async (ctx) => {
  ctx.work = await mkdtemp(join(tmpdir(), 'kiln-ovl-'));
  ctx.root = join(ctx.work, 'root');
});
t.after.each(async (ctx) => {
  for (const m of (await mountsUnder(ctx.work)).reverse()) await sh(['umount', '-l', m]).catch(() => undefined);
  await rm(ctx.work, { recursive: true, force: true });
});

t('auto picks overlay on this host (root) and says why', async (ctx) => {
  const support = await overlaySupport(ctx.work);
  assert.equal(support, { ok: true, volatile: kernelHasVolatile() });
  const s = await createSnapshotter({ root: ctx.root });
  assert.is(s.kind, 'overlay');
  // Writable mounts skip the sync of the whole upper filesystem at umount where the kernel can.
  await s.createCommitted('probe-base', undefined, async () => undefined);
  const rootfs = await s.prepare('rw', 'probe-base');
  const line = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === rootfs.path) ?? '';
  assert.is(/[ ,](fsync=)?volatile(,|$)/.test(line), kernelHasVolatile(), line);
  await rootfs.release();
  await s.remove('rw');
  await s.remove('probe-base');
  assert.match(s.reason!, /overlay/);
  assert.equal(await readdir(join(ctx.root, 'snapshots', 'overlay', '.tmp')), [], 'the probe cleans up');
  assert.equal(await mountsUnder(ctx.work), []);
});

t('a snapshot with no parent (FROM scratch) is a plain directory, not a mount, and commits like the others', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  const r = await s.prepare('scratch', undefined);
  assert.equal(await mountsUnder(ctx.work), [], 'nothing is mounted for an empty parent');
  await mkdir(join(r.path, 'app'));
  await writeFile(join(r.path, 'app', 'hello'), 'hi');
  const { changes } = await s.changes('scratch');
  assert.equal(changes.map((c) => `${c.kind} ${c.path}`).sort(), ['add app', 'add app/hello']);
  await r.release();
  await s.commit('scratch', 'scratch-1');
  const next = await s.prepare('next', 'scratch-1');
  assert.is(await readFile(join(next.path, 'app', 'hello'), 'utf8'), 'hi');
  await next.release();
  await s.remove('next');
  await s.remove('scratch-1');
  assert.equal(await mountsUnder(ctx.work), []);
});

t('auto falls back to copy where overlay cannot mount, and forced overlay says why', async (ctx) => {
  // An overlay upper dir cannot live on an overlay filesystem with our options → probe fails.
  const s = await createSnapshotter({ root: ctx.root });
  await s.createCommitted('base', undefined, (d) => writeFile(join(d, 'x'), 'x'));
  const r = await s.prepare('k', 'base');
  const nested = join(r.path, 'nested-root');
  await mkdir(nested);
  const support = await overlaySupport(join(nested, 'probe'));
  assert.is(support.ok, false, 'this kernel refuses an overlay upper dir on overlayfs');
  assert.match(support.reason!, /test overlay mount failed/);
  const fallback = await createSnapshotter({ root: nested, kind: 'auto' });
  assert.is(fallback.kind, 'copy');
  assert.match(fallback.reason!, /overlay unavailable/);
  await createSnapshotter({ root: nested, kind: 'overlay' }).then(
    () => assert.unreachable(),
    (e: { code: string; message: string }) => {
      assert.is(e.code, 'OVERLAY_UNSUPPORTED');
      assert.match(e.message, /^Cannot use the overlay snapshotter: /);
    },
  );
  await r.release();
  await s.remove('k');
});

/** Chain of `n` layers: layer i adds f<i> and dir d<i>/x, deletes f<i-2>, and every 3rd makes `o` opaque with only o/<i>. */
async function buildChain(s: { createCommitted: OverlaySnapshotter['createCommitted'] }, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    await s.createCommitted(`L${i}`, i === 1 ? undefined : `L${i - 1}`, async (dir, _mode, info) => {
      await writeFile(join(dir, `f${i}`), `layer ${i}`);
      await mkdir(join(dir, `d${i}`));
      await writeFile(join(dir, `d${i}/x`), String(i));
      if (i > 2) await sh(['mknod', join(dir, `f${i - 2}`), 'c', '0', '0']);
      await mkdir(join(dir, 'o'));
      if (i % 3 === 0) await sh(['setfattr', '-n', info.opaqueXattr, '-v', 'y', join(dir, 'o')]);
      await writeFile(join(dir, 'o', String(i)), String(i));
    });
  }
}

function expectedTop(n: number): string[] {
  const names = [`f${n - 1}`, `f${n}`, 'o'];
  for (let i = 1; i <= n; i++) names.push(`d${i}`);
  return names.sort();
}

function expectedO(n: number): string[] {
  const lastOpaque = Math.floor(n / 3) * 3;
  const out: string[] = [];
  for (let i = Math.max(1, lastOpaque); i <= n; i++) out.push(String(i));
  return out.sort();
}

t('chains deeper than maxLowers mount over a flattened lower part and still show the right tree', async (ctx) => {
  const s = await OverlaySnapshotter.open(join(ctx.root, 'snapshots', 'overlay'), { maxLowers: 3 });
  await buildChain(s, 8);
  const r = await s.prepare('top', 'L8');
  assert.equal((await readdir(r.path)).sort(), expectedTop(8));
  assert.equal((await readdir(join(r.path, 'o'))).sort(), expectedO(8));
  for (let i = 1; i <= 8; i++) assert.is(await readFile(join(r.path, `d${i}/x`), 'utf8'), String(i));
  // the flattened part is a plain tree: no whiteout devices, no overlay marks
  const flats = (await readdir(join(ctx.root, 'snapshots', 'overlay'))).filter((n) => !n.startsWith('.') && lstatSync(join(ctx.root, 'snapshots', 'overlay', n, 'flat'), { throwIfNoEntry: false }));
  assert.ok(flats.length >= 1, 'a flat dir was built');
  await writeFile(join(r.path, 'f1'), 'back again');
  await rm(join(r.path, 'f8'));
  const { changes } = await s.changes('top');
  assert.equal(changes, [
    { kind: 'add', path: 'f1' },
    { kind: 'delete', path: 'f8' },
  ]);
  await r.release();
  await s.commit('top', 'L9');
  // a second mount of the same chain reuses the flat dirs
  const again = await s.prepare('again', 'L9');
  assert.is(await readFile(join(again.path, 'f1'), 'utf8'), 'back again');
  await again.release();
  await s.remove('again');
  assert.equal(await mountsUnder(ctx.work), []);
  assert.equal(await readdir(join(ctx.root, 'snapshots', 'overlay', '.tmp')), []);
});

t('a 160-layer chain mounts within the one-page option limit (default maxLowers)', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  await buildChain(s, 160);
  const r = await s.prepare('top', 'L160');
  assert.equal((await readdir(r.path)).sort(), expectedTop(160));
  assert.equal((await readdir(join(r.path, 'o'))).sort(), expectedO(160));
  assert.is(await readFile(join(r.path, 'd1/x'), 'utf8'), '1');
  await r.release();
  await s.remove('top');
  assert.equal(await mountsUnder(ctx.work), []);
});

t('a layer marked opaque with trusted.overlay.opaque (applier default) is honoured', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  await s.createCommitted('base', undefined, async (d) => {
    await mkdir(join(d, 'dir'));
    await writeFile(join(d, 'dir/old'), 'old');
  });
  await s.createCommitted('top', 'base', async (d) => {
    await mkdir(join(d, 'dir'));
    await sh(['setfattr', '-n', 'trusted.overlay.opaque', '-v', 'y', join(d, 'dir')]);
    await writeFile(join(d, 'dir/new'), 'new');
  });
  const r = await s.prepare('k', 'top');
  assert.equal(await readdir(join(r.path, 'dir')), ['new']);
  await r.release();
  await s.remove('k');
});

t('a kiln killed with SIGKILL leaves a mount; the next one to start removes it', async (ctx) => {
  const child = runChild({ op: 'hang', root: ctx.root, kind: 'overlay' }, { timeoutMs: 60_000 });
  const { path } = JSON.parse(await child.firstLine) as { path: string };
  assert.equal(await mountsUnder(ctx.root), [path]);
  child.kill('SIGKILL');
  await child.exit;
  assert.equal(await mountsUnder(ctx.root), [path], 'SIGKILL runs no exit hook');
  await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  assert.equal(await mountsUnder(ctx.root), []);
  assert.equal(await readdir(join(ctx.root, 'snapshots', 'overlay', '.active')), []);
});

t('release of a busy rootfs (a process still inside) detaches it lazily', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  await s.createCommitted('base', undefined, (d) => writeFile(join(d, 'f'), 'f'));
  const r = await s.prepare('busy', 'base');
  const { spawn } = await import('node:child_process');
  const sleeper = spawn('sleep', ['30'], { cwd: r.path, stdio: 'ignore' });
  try {
    await new Promise((res) => setTimeout(res, 100));
    await sh(['umount', r.path]).then(
      () => assert.unreachable('plain umount of a busy mount should fail'),
      () => undefined,
    );
    await r.release();
    assert.equal(await mountsUnder(ctx.root), []);
    await s.remove('busy');
    assert.equal(await readdir(join(ctx.root, 'snapshots', 'overlay', '.active')), []);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

t('a SIGTERM handler calling unmountAllSync leaves no mount', async (ctx) => {
  const child = runChild({ op: 'sigterm', root: ctx.root, kind: 'overlay' }, { timeoutMs: 60_000 });
  const { path } = JSON.parse(await child.firstLine) as { path: string };
  assert.equal(await mountsUnder(ctx.root), [path]);
  child.kill('SIGTERM');
  assert.is((await child.exit).code, 143);
  assert.equal(await mountsUnder(ctx.root), []);
});

t('a process exiting without release unmounts through its exit hook', async (ctx) => {
  const child = runChild({ op: 'exit', root: ctx.root, kind: 'overlay' });
  const { code } = await child.exit;
  assert.is(code, 0);
  const [line] = await child.lines;
  assert.ok(JSON.parse(line!).path);
  assert.equal(await mountsUnder(ctx.root), []);
});

t('two processes racing createCommitted on one id: one fill, both see it', async (ctx) => {
  const log = join(ctx.work, 'fills.log');
  await writeFile(log, '');
  const a = runChild({ op: 'race', root: ctx.root, kind: 'overlay', id: 'sha256:race', log });
  const b = runChild({ op: 'race', root: ctx.root, kind: 'overlay', id: 'sha256:race', log });
  const [la, lb] = await Promise.all([a.lines, b.lines]);
  const fills = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  assert.is(fills.length, 1, `fill ran ${fills.length} times`);
  assert.equal(JSON.parse(la![0]!), JSON.parse(lb![0]!));
  assert.is(JSON.parse(la![0]!).by, fills[0]);
});

t('ownership from lower layers survives copy-up into the upper dir', async (ctx) => {
  const s = await createSnapshotter({ root: ctx.root, kind: 'overlay' });
  await s.createCommitted('base', undefined, async (d) => {
    await mkdir(join(d, 'home/u'), { recursive: true });
    await writeFile(join(d, 'home/u/f'), 'f');
    await chown(join(d, 'home/u'), 1000, 1000);
    await chown(join(d, 'home/u/f'), 1000, 1000);
  });
  const r = await s.prepare('k', 'base');
  await writeFile(join(r.path, 'home/u/f'), 'g');
  const { root } = await s.changes('k');
  const tree = await describeTree(root);
  assert.match(tree['home/u']!, /^dir 755 1000:1000/);
  assert.match(tree['home/u/f']!, /^file 644 1000:1000 1 /);
  await r.release();
  await s.remove('k');
});

t.run();
