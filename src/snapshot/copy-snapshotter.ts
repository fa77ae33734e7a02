import type { Stats } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Change } from '../layer/types.js';
import { buildIndex, diffIndex, type LstatIndex, loadIndex, saveIndex } from './lstat-index.js';
import { OPAQUE_XATTR } from './opaque-xattr.js';
import { statThroughLayers } from './parent-stats.js';
import { runTool } from './run-tool.js';
import { SnapshotStore } from './snapshot-store.js';
import type { FillInfo, FillResult, Rootfs, SnapshotInfo, Snapshotter } from './types.js';

/** Coarse kernel timestamps tick at most every 10 ms (HZ=100); wait this long past the newest indexed ctime. */
const CTIME_GRANULARITY_NS = 20_000_000n;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Copy snapshotter, for hosts where overlay cannot be mounted. A committed snapshot's `fs` is a
 * full tree; prepare copies the parent (`cp -a --reflink=auto`: hardlink farms would let a step
 * mutate the parent in place) and indexes it with lstat; changes() compares lstat data against
 * that index (see lstat-index.ts) and never reads unchanged contents.
 */
export class CopySnapshotter implements Snapshotter {
  readonly kind = 'copy' as const;
  private readonly indexes = new Map<string, LstatIndex>();

  constructor(
    private readonly store: SnapshotStore,
    readonly reason?: string,
  ) {}

  static async open(dir: string, options: { reason?: string } = {}): Promise<CopySnapshotter> {
    const store = new SnapshotStore(dir, 'copy');
    await store.init((_key, d) => rm(d, { recursive: true, force: true }));
    return new CopySnapshotter(store, options.reason);
  }

  async exists(id: string): Promise<boolean> {
    return (await this.store.readCommitted(id)) !== undefined;
  }

  private async copyParent(parent: string | undefined, to: string): Promise<void> {
    if (parent === undefined) {
      await mkdir(to);
      await chmod(to, 0o755);
      return;
    }
    await this.store.requireCommitted(parent);
    await runTool(['cp', '-a', '--reflink=auto', '--', this.store.fsOf(parent), to], { timeoutMs: 60 * 60_000 });
  }

  async createCommitted(id: string, parent: string | undefined, fill: (dir: string, mode: 'overlay' | 'copy', info: FillInfo) => Promise<void | FillResult>): Promise<void> {
    await this.store.publish(id, parent, async (tmp) => {
      const fs = join(tmp, 'fs');
      await this.copyParent(parent, fs);
      await fill(fs, 'copy', { opaqueXattr: OPAQUE_XATTR });
    });
  }

  async prepare(key: string, parent: string | undefined): Promise<Rootfs> {
    const dir = await this.store.createActive(key, parent, (d) => rm(d, { recursive: true, force: true }));
    const fs = join(dir, 'fs');
    try {
      await this.copyParent(parent, fs);
      const { index, maxCtime } = await buildIndex(fs);
      await saveIndex(join(dir, 'index.json'), index);
      this.indexes.set(key, index);
      // A change made after we return must get a ctime newer than every indexed one.
      const waitNs = maxCtime + CTIME_GRANULARITY_NS - BigInt(Date.now()) * 1_000_000n;
      if (waitNs > 0n) await sleep(Number(waitNs / 1_000_000n) + 1);
    } catch (err) {
      this.store.forgetActive(key);
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return { path: fs, release: async () => undefined };
  }

  /** See Snapshotter.view: the committed tree itself (prepare would copy it all). */
  async view(key: string, parent: string): Promise<Rootfs> {
    await this.store.requireCommitted(parent);
    await this.store.createActive(key, parent, (d) => rm(d, { recursive: true, force: true }));
    return { path: this.store.fsOf(parent), release: async () => undefined };
  }

  async changes(key: string): Promise<{ root: string; changes: Change[] }> {
    await this.store.requireActive(key);
    const dir = this.store.activeDir(key);
    let index = this.indexes.get(key);
    if (!index) {
      index = await loadIndex(join(dir, 'index.json'));
      this.indexes.set(key, index);
    }
    const root = join(dir, 'fs');
    return { root, changes: await diffIndex(root, index) };
  }

  async parentStats(key: string, paths: string[]): Promise<Map<string, Stats | undefined>> {
    const meta = await this.store.requireActive(key);
    // A committed copy snapshot is one plain tree: deletions were applied, a 0/0 device is a device.
    return statThroughLayers(meta.parent === null ? [] : [this.store.fsOf(meta.parent)], paths, false);
  }

  async commit(key: string, id: string): Promise<void> {
    const meta = await this.store.requireActive(key);
    const dir = this.store.activeDir(key);
    await this.store.publish(id, meta.parent ?? undefined, async (tmp) => {
      await rename(join(dir, 'fs'), join(tmp, 'fs'));
    });
    this.indexes.delete(key);
    this.store.forgetActive(key);
    await rm(dir, { recursive: true, force: true });
  }

  async remove(keyOrId: string): Promise<void> {
    if (await this.store.readActive(keyOrId)) {
      this.indexes.delete(keyOrId);
      this.store.forgetActive(keyOrId);
      await rm(this.store.activeDir(keyOrId), { recursive: true, force: true });
      return;
    }
    if (!(await this.exists(keyOrId))) return;
    await this.store.assertUnused(keyOrId);
    await this.store.dropCommitted(keyOrId);
  }

  list(): Promise<SnapshotInfo[]> {
    return this.store.infos();
  }

  listActiveParents(): Promise<string[]> {
    return this.store.activeParents();
  }

  usage(id: string): Promise<number> {
    return this.store.usage(id);
  }
}
