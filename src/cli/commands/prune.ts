import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pruneSnapshots, referencedSnapshotIds, type SnapshotPruneResult } from '../../build/prune-snapshots.js';
import { collectGarbage } from '../../content/index.js';
import type { Descriptor } from '../../oci/descriptor.js';
import { isDigest } from '../../oci/digest.js';
import { type Command, flagBool } from '../command.js';
import { humanSize, storeFor } from './registry-options.js';

/** Every descriptor-shaped object ({mediaType, digest, size}) inside build-cache records: they keep their blobs alive. */
async function cacheRoots(root: string): Promise<Descriptor[]> {
  const dir = join(root, 'cache', 'records');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: Descriptor[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.digest === 'string' && isDigest(o.digest) && typeof o.mediaType === 'string') out.push(o as unknown as Descriptor);
      Object.values(o).forEach(walk);
    }
  };
  for (const n of names) {
    try {
      walk(JSON.parse(await readFile(join(dir, n), 'utf8')));
    } catch {
      /* a torn or foreign file keeps nothing alive */
    }
  }
  return out;
}

/** Prune both snapshotter stores that exist under <root>/snapshots (a host may have used either). */
async function pruneAllSnapshots(root: string, keep: Set<string>, dryRun: boolean): Promise<SnapshotPruneResult> {
  const total: SnapshotPruneResult = { removed: [], skipped: [], kept: 0, bytesFreed: 0 };
  for (const kind of ['overlay', 'copy'] as const) {
    const dir = join(root, 'snapshots', kind);
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) continue;
    const { OverlaySnapshotter, CopySnapshotter } = await import('../../snapshot/index.js');
    const snap = kind === 'overlay' ? await OverlaySnapshotter.open(dir) : await CopySnapshotter.open(dir);
    const r = await pruneSnapshots(snap, keep, { dryRun });
    total.removed.push(...r.removed);
    total.skipped.push(...r.skipped);
    total.kept += r.kept;
    total.bytesFreed += r.bytesFreed;
  }
  return total;
}

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'Delete blobs and snapshots no image name or build-cache record uses',
  usage: 'prune [--dry-run]',
  flags: [{ name: 'dry-run', type: 'boolean', description: 'Only report what would be deleted' }],
  async run(args, io) {
    const store = storeFor(io);
    const dryRun = flagBool(args, 'dry-run');
    const res = await collectGarbage(store, { extraRoots: await cacheRoots(store.root), dryRun });
    for (const b of res.removed) io.stdout.write(`${dryRun ? 'Would delete' : 'Deleted'}: ${b.digest}\n`);
    io.stdout.write(`${dryRun ? 'Would reclaim' : 'Total reclaimed space'}: ${humanSize(res.bytesFreed)} (${res.removed.length} blobs; ${res.kept} kept)\n`);
    const snaps = await pruneAllSnapshots(store.root, await referencedSnapshotIds(store, join(store.root, 'cache')), dryRun);
    for (const s of snaps.removed) io.stdout.write(`${dryRun ? 'Would delete snapshot' : 'Deleted snapshot'}: ${s.id} (${humanSize(s.size)})\n`);
    for (const id of snaps.skipped) io.stdout.write(`Skipped snapshot in use: ${id}\n`);
    io.stdout.write(`${dryRun ? 'Would reclaim from snapshots' : 'Reclaimed from snapshots'}: ${humanSize(snaps.bytesFreed)} (${snaps.removed.length} snapshots; ${snaps.kept} kept)\n`);
    return 0;
  },
};
