import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OciLayoutStore } from '../content/index.js';
import { KilnError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isIndexMediaType, isManifestMediaType } from '../oci/media-types.js';
import type { Snapshotter } from '../snapshot/index.js';
import { chainId } from './image-state.js';

/** Chain ids of every prefix of `diffIds`: the committed snapshot ids a stack of layers uses. */
function prefixChainIds(diffIds: readonly string[], into: Set<string>): void {
  for (let i = 1; i <= diffIds.length; i++) into.add(chainId(diffIds.slice(0, i))!);
}

/**
 * Snapshot ids that images and the build cache still use: the layer chain ids of every tagged
 * image (each platform of an index that is in the store) and of every build-cache record's state
 * under `cacheDir/records`. Unreadable blobs and torn records keep nothing alive.
 */
export async function referencedSnapshotIds(store: OciLayoutStore, cacheDir: string): Promise<Set<string>> {
  const ids = new Set<string>();
  const seen = new Set<string>();
  const queue: Descriptor[] = (await store.listTags()).map((t) => t.descriptor);
  while (queue.length) {
    const d = queue.pop()!;
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) continue;
    if (!(await store.stat(d.digest))) continue;
    try {
      const doc = JSON.parse((await store.read(d.digest)).toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor };
      if (doc.manifests) queue.push(...doc.manifests);
      if (doc.config && (await store.stat(doc.config.digest))) {
        const config = JSON.parse((await store.read(doc.config.digest)).toString('utf8')) as { rootfs?: { diff_ids?: unknown } };
        const diffIds = config.rootfs?.diff_ids;
        if (Array.isArray(diffIds) && diffIds.every((x) => typeof x === 'string')) prefixChainIds(diffIds, ids);
      }
    } catch {
      /* not JSON (or not ours): nothing to keep through it */
    }
  }
  let names: string[] = [];
  try {
    names = await readdir(join(cacheDir, 'records'));
  } catch {
    /* no build cache yet */
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      const rec = JSON.parse(await readFile(join(cacheDir, 'records', name), 'utf8')) as { state?: { layers?: Array<{ diffId?: unknown }> } };
      const diffIds = rec.state?.layers?.map((l) => l.diffId);
      if (diffIds?.every((x): x is string => typeof x === 'string')) prefixChainIds(diffIds, ids);
    } catch {
      /* torn or foreign record */
    }
  }
  return ids;
}

export interface SnapshotPruneResult {
  removed: Array<{ id: string; size: number }>;
  /** In use when we tried (a snapshot was prepared or committed on top meanwhile). */
  skipped: string[];
  kept: number;
  bytesFreed: number;
}

/**
 * Remove every committed snapshot of `snap` that is not in `keep`, not a parent (transitively)
 * of a kept one, and not under an active snapshot; children go before their parents. A removal
 * refused as SNAPSHOT_IN_USE is skipped, not an error. `dryRun` only reports.
 */
export async function pruneSnapshots(snap: Snapshotter, keep: ReadonlySet<string>, options: { dryRun?: boolean } = {}): Promise<SnapshotPruneResult> {
  const all = await snap.list();
  const parentOf = new Map(all.map((s) => [s.id, s.parent]));
  const live = new Set<string>();
  const mark = (id: string | null | undefined): void => {
    while (id && !live.has(id)) {
      live.add(id);
      id = parentOf.get(id) ?? null;
    }
  };
  for (const s of all) if (keep.has(s.id)) mark(s.id);
  for (const p of await snap.listActiveParents()) mark(p);
  const depth = (id: string): number => {
    let n = 0;
    for (let cur: string | null | undefined = id; cur && n <= all.length; cur = parentOf.get(cur)) n++;
    return n;
  };
  const doomed = all
    .filter((s) => !live.has(s.id))
    .map((s) => ({ id: s.id, depth: depth(s.id) }))
    .sort((a, b) => b.depth - a.depth || (a.id < b.id ? -1 : 1));
  const res: SnapshotPruneResult = { removed: [], skipped: [], kept: all.length - doomed.length, bytesFreed: 0 };
  for (const { id } of doomed) {
    const size = await snap.usage(id).catch(() => 0);
    if (!options.dryRun) {
      try {
        await snap.remove(id);
      } catch (err) {
        if (err instanceof KilnError && err.code === 'SNAPSHOT_IN_USE') {
          res.skipped.push(id);
          continue;
        }
        throw err;
      }
    }
    res.removed.push({ id, size });
    res.bytesFreed += size;
  }
  return res;
}
