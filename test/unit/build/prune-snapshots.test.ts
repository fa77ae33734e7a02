import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pruneSnapshots } from '../../../src/build/prune-snapshots.js';
import { CopySnapshotter } from '../../../src/snapshot/index.js';

/** A real copy snapshotter with the chain base → mid → top plus a sibling `other` on base. */
async function chain(dir: string): Promise<CopySnapshotter> {
  const snap = await CopySnapshotter.open(dir);
  const fill = (name: string, bytes: number) => async (d: string) => writeFile(join(d, name), Buffer.alloc(bytes, 1));
  await snap.createCommitted('base', undefined, fill('base', 10_000));
  await snap.createCommitted('mid', 'base', fill('mid', 20_000));
  await snap.createCommitted('top', 'mid', fill('top', 30_000));
  await snap.createCommitted('other', 'base', fill('other', 1));
  return snap;
}

test('keeps what `keep` names and its parents; removes the rest children first, with sizes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-prune-snap-'));
  try {
    const snap = await chain(dir);
    assert.equal((await snap.list()).map((s) => `${s.id}<${s.parent}`).sort(), ['base<null', 'mid<base', 'other<base', 'top<mid']);
    const dry = await pruneSnapshots(snap, new Set(['other']), { dryRun: true });
    assert.equal(dry.removed.map((r) => r.id), ['top', 'mid']);
    assert.is((await snap.list()).length, 4);
    const res = await pruneSnapshots(snap, new Set(['other']));
    assert.equal(res.removed.map((r) => r.id), ['top', 'mid']);
    assert.is(res.kept, 2);
    assert.ok(res.bytesFreed >= 50_000, String(res.bytesFreed));
    assert.equal((await snap.list()).map((s) => s.id).sort(), ['base', 'other']);
    assert.equal((await pruneSnapshots(snap, new Set())).removed.map((r) => r.id), ['other', 'base']);
    assert.equal(await snap.list(), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an active snapshot keeps its parent chain', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-prune-snap-'));
  try {
    const snap = await chain(dir);
    const rootfs = await snap.prepare('step-x', 'mid');
    // Not even tried (a dry run would otherwise promise them), so nothing is skipped either.
    assert.equal((await pruneSnapshots(snap, new Set(), { dryRun: true })).removed.map((r) => r.id), ['top', 'other']);
    const res = await pruneSnapshots(snap, new Set());
    assert.equal(res.removed.map((r) => r.id), ['top', 'other']);
    assert.equal(res.skipped, []);
    assert.equal((await snap.list()).map((s) => s.id).sort(), ['base', 'mid']);
    await rootfs.release();
    await snap.remove('step-x');
    assert.equal((await pruneSnapshots(snap, new Set())).removed.map((r) => r.id), ['mid', 'base']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
