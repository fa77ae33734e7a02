import type { Stats } from 'node:fs';
import { chmod, lchown, lstat, lutimes, mkdir, rename, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../errors.js';
import type { Change } from '../layer/types.js';
import { getXattrs, isOverlayXattr, setXattrs, type XattrSet } from '../layer/xattr.js';
import { overlayChanges } from './overlay-changes.js';
import { MOUNT_DATA_MAX, mountOverlay, mountPoints, overlayOptions, unmount } from './overlay-mount.js';
import { normaliseOpaqueMarks, OPAQUE_XATTR } from './opaque-xattr.js';
import { lstatMaybe, statThroughLayers } from './parent-stats.js';
import { runTool } from './run-tool.js';
import { type CommittedMeta, SnapshotStore, snapshotDirName } from './snapshot-store.js';
import type { FillInfo, FillResult, Rootfs, SnapshotInfo, Snapshotter } from './types.js';

export const DEFAULT_MAX_LOWERS = 128;

/**
 * Overlay snapshotter. A committed snapshot's `fs` holds one layer's diff in overlay form
 * (0/0 whiteout devices, user.overlay.opaque); an active snapshot is an overlay mount of
 * `upper` over the chain of its parent, so the upper dir *is* the step's diff.
 *
 * Deep chains: lower dirs are passed as short relative symlinks (.l/<10 hex>, resolved from
 * the store dir as cwd), about 14 bytes a layer. Chains deeper than `maxLowers` mount the top
 * maxLowers-1 layers over `flat`, a one-off merged copy of the rest (kept inside the snapshot
 * dir of the layer it ends at, built by a read-only overlay mount + cp -a, and shared by every
 * later mount of that chain).
 */
export class OverlaySnapshotter implements Snapshotter {
  readonly kind = 'overlay' as const;
  private readonly mounted = new Map<string, string>();

  constructor(
    private readonly store: SnapshotStore,
    private readonly maxLowers = DEFAULT_MAX_LOWERS,
    readonly reason?: string,
  ) {
    if (maxLowers < 2) throw new KilnError('USAGE', `Cannot use maxLowers ${maxLowers}: at least 2 are needed`);
  }

  static async open(dir: string, options: { maxLowers?: number; reason?: string } = {}): Promise<OverlaySnapshotter> {
    const store = new SnapshotStore(dir, 'overlay');
    await store.init(dropActiveDir);
    return new OverlaySnapshotter(store, options.maxLowers, options.reason);
  }

  async exists(id: string): Promise<boolean> {
    return (await this.store.readCommitted(id)) !== undefined;
  }

  async createCommitted(id: string, parent: string | undefined, fill: (dir: string, mode: 'overlay' | 'copy', info: FillInfo) => Promise<void | FillResult>): Promise<void> {
    await this.store.publish(id, parent, async (tmp) => {
      const fs = join(tmp, 'fs');
      await mkdir(fs);
      await chmod(fs, 0o755);
      const filled = await fill(fs, 'overlay', { opaqueXattr: OPAQUE_XATTR });
      if (!filled?.opaqueMarksAsAsked) await normaliseOpaqueMarks(fs);
    });
  }

  async prepare(key: string, parent: string | undefined): Promise<Rootfs> {
    if (parent === undefined) return this.prepareEmpty(key);
    const lowers = await this.lowersFor(await this.store.chain(parent));
    const dir = await this.store.createActive(
      key,
      parent,
      (d) => dropActiveDir(key, d),
      (d) => Promise.all([mkdir(join(d, 'upper')).then(() => chmod(join(d, 'upper'), 0o755)), mkdir(join(d, 'work')), mkdir(join(d, 'merged'))]).then(() => undefined),
    );
    const rel = dir.slice(this.store.dir.length + 1);
    const merged = join(dir, 'merged');
    try {
      await mountOverlay({ cwd: this.store.dir, lowers, upper: `${rel}/upper`, work: `${rel}/work`, target: merged });
    } catch (err) {
      this.store.forgetActive(key);
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    this.mounted.set(key, merged);
    return { path: merged, release: () => this.release(key) };
  }

  /**
   * See Snapshotter.prepareFresh. The path is walked down to its first name that no layer has
   * at all (a whiteout, a file where a parent should be, or anything unreadable counts as had).
   * The directories above it must show in the merged view as real directories: they are made in
   * the upper dir as overlay's copy-up makes them (owner, mode, xattrs, then times, deepest
   * first), so the tree is what a mount would have left.
   */
  async prepareFresh(key: string, parent: string, dest: string): Promise<Rootfs | undefined> {
    const parts = dest.split('/').filter((p) => p !== '');
    if (parts.some((p) => p === '.' || p === '..')) return undefined;
    const lowers = (await this.lowersFor(await this.store.chain(parent))).map((l) => join(this.store.dir, l));
    const absentEverywhere = async (rel: string): Promise<boolean> => {
      for (const lower of lowers) {
        const had = await lstat(join(lower, rel)).then(
          () => true,
          (err: NodeJS.ErrnoException) => err.code !== 'ENOENT',
        );
        if (had) return false;
      }
      return true;
    };
    let fresh = -1;
    for (let i = 0; i < parts.length && fresh === -1; i++) if (await absentEverywhere(parts.slice(0, i + 1).join('/'))) fresh = i;
    if (fresh === -1) return undefined; // the whole path exists: the step may replace or merge into what is below
    const ancestors = parts.slice(0, fresh).map((_, i) => parts.slice(0, i + 1).join('/'));
    const stats = await statThroughLayers(lowers, ancestors, true);
    if (ancestors.some((a) => !stats.get(a)?.isDirectory())) return undefined;
    // Each ancestor's xattrs, from the layer that decides it (the topmost that has it).
    const deciding = ancestors.map((a) => lowers.map((l) => join(l, a)).find((p) => lstatMaybe(p) !== undefined)!);
    const xattrs = deciding.length > 0 ? await getXattrs(deciding) : new Map<string, Map<string, Buffer>>();
    const dir = await this.store.createActive(
      key,
      parent,
      (d) => dropActiveDir(key, d),
      (d) => mkdir(join(d, 'upper')).then(() => chmod(join(d, 'upper'), 0o755)),
    );
    const upper = join(dir, 'upper');
    try {
      const sets: XattrSet[] = [];
      for (const [i, rel] of ancestors.entries()) {
        const st = stats.get(rel)!;
        const path = join(upper, rel);
        await mkdir(path);
        await lchown(path, st.uid, st.gid);
        await chmod(path, st.mode & 0o7777);
        const attrs = [...(xattrs.get(deciding[i]!) ?? [])].filter(([name]) => !isOverlayXattr(name));
        if (attrs.length > 0) sets.push({ path, attrs });
      }
      if ((await setXattrs(sets)).length > 0) throw new Error('an xattr could not be copied up');
      for (let i = ancestors.length - 1; i >= 0; i--) {
        const st = stats.get(ancestors[i]!)!;
        await lutimes(join(upper, ancestors[i]!), st.atime, st.mtime);
      }
    } catch {
      // An owner this namespace cannot set, an xattr it may not write: the caller mounts instead.
      this.store.forgetActive(key);
      await rm(dir, { recursive: true, force: true });
      return undefined;
    }
    return { path: upper, release: async () => undefined };
  }

  /** See Snapshotter.view: a one-layer chain is its committed dir; a longer one is mounted, as prepare does. */
  async view(key: string, parent: string): Promise<Rootfs> {
    const chain = await this.store.chain(parent);
    if (chain.length !== 1) return this.prepare(key, parent);
    await this.store.createActive(key, parent, (d) => dropActiveDir(key, d));
    return { path: this.store.fsOf(parent), release: async () => undefined };
  }

  /**
   * A snapshot with no parent (FROM scratch) is its upper dir, unmounted: with nothing below,
   * the mount would show exactly that dir, and a mount and an umount cost ~12 ms of a step.
   */
  private async prepareEmpty(key: string): Promise<Rootfs> {
    const dir = await this.store.createActive(
      key,
      undefined,
      (d) => dropActiveDir(key, d),
      (d) => mkdir(join(d, 'upper')).then(() => chmod(join(d, 'upper'), 0o755)),
    );
    return { path: join(dir, 'upper'), release: async () => undefined };
  }

  private async release(key: string): Promise<void> {
    const target = this.mounted.get(key);
    if (target === undefined) return;
    await unmount(target);
    this.mounted.delete(key);
  }

  async changes(key: string): Promise<{ root: string; changes: Change[]; xattrs: Map<string, Map<string, Buffer>> }> {
    const meta = await this.store.requireActive(key);
    const lowers = meta.parent === null ? [] : await this.lowersFor(await this.store.chain(meta.parent));
    const upper = join(this.store.activeDir(key), 'upper');
    const { changes, xattrs } = await overlayChanges(
      upper,
      lowers.map((l) => join(this.store.dir, l)),
    );
    return { root: upper, changes, xattrs };
  }

  async parentStats(key: string, paths: string[]): Promise<Map<string, Stats | undefined>> {
    const meta = await this.store.requireActive(key);
    const lowers = meta.parent === null ? [] : await this.lowersFor(await this.store.chain(meta.parent));
    return statThroughLayers(
      lowers.map((l) => join(this.store.dir, l)),
      paths,
      true,
    );
  }

  async commit(key: string, id: string): Promise<void> {
    const meta = await this.store.requireActive(key);
    await this.release(key);
    const dir = this.store.activeDir(key);
    // A mount left by another (dead) process of ours must not be renamed from under it.
    if ((await mountPoints()).includes(join(dir, 'merged'))) await unmount(join(dir, 'merged'));
    await this.store.publish(id, meta.parent ?? undefined, async (tmp) => {
      await rename(join(dir, 'upper'), join(tmp, 'fs'));
    });
    this.store.forgetActive(key);
    await rm(dir, { recursive: true, force: true });
  }

  async remove(keyOrId: string): Promise<void> {
    if (await this.store.readActive(keyOrId)) {
      await this.release(keyOrId);
      this.store.forgetActive(keyOrId);
      await dropActiveDir(keyOrId, this.store.activeDir(keyOrId));
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

  /** Lower dirs (relative to the store dir, topmost first) that show the merged chain. */
  private async lowersFor(chain: CommittedMeta[]): Promise<string[]> {
    const links = chain.map((m) => `.l/${m.link}`);
    const budget = MOUNT_DATA_MAX - 512; // room for upperdir, workdir and the feature options
    if (chain.length <= this.maxLowers && overlayOptions({ lowers: links }).length < budget) return links;
    let keep = 0;
    let size = 0;
    while (keep < this.maxLowers - 1 && size + links[keep]!.length + 1 < budget - 80) size += links[keep++]!.length + 1;
    return [...links.slice(0, keep), await this.ensureFlat(chain.slice(keep))];
  }

  /** `.l/<link>.f` → the merged view of `chain` (topmost first) as one directory, built once. */
  private async ensureFlat(chain: CommittedMeta[]): Promise<string> {
    const top = chain[0]!;
    if (chain.length === 1) return `.l/${top.link}`;
    const link = `.l/${top.link}.f`;
    const flat = join(this.store.committedDir(top.id), 'flat');
    const ready = async () => (await stat(join(this.store.dir, link)).catch(() => undefined))?.isDirectory() === true;
    if (await ready()) return link;
    await this.store.withLock(`${top.id}#flat`, async () => {
      if (await ready()) return;
      const lowers = await this.lowersFor(chain);
      const tmp = await this.store.tmpDir();
      const merged = join(tmp, 'm');
      let mounted = false;
      try {
        await mkdir(merged);
        await mountOverlay({ cwd: this.store.dir, lowers, target: merged });
        mounted = true;
        await runTool(['cp', '-a', '--reflink=auto', '--', `${merged}/.`, join(tmp, 'flat')], { timeoutMs: 60 * 60_000 });
        await unmount(merged);
        mounted = false;
        await rm(flat, { recursive: true, force: true });
        await rename(join(tmp, 'flat'), flat);
        await symlink(`../${snapshotDirName(top.id)}/flat`, join(this.store.dir, link)).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
      } finally {
        if (mounted) await unmount(merged).catch(() => undefined);
        await rm(tmp, { recursive: true, force: true });
      }
    });
    return link;
  }
}

/** Unmount (if still mounted, e.g. left by a dead process) and delete an active snapshot dir. */
async function dropActiveDir(_key: string, dir: string): Promise<void> {
  const merged = join(dir, 'merged');
  if ((await mountPoints()).includes(merged)) await unmount(merged);
  await rm(dir, { recursive: true, force: true });
}
