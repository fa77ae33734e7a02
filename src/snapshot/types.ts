import type { Stats } from 'node:fs';
import type { Change } from '../layer/types.js';

/**
 * Contract of snapshotters (owner: src/snapshot/). Snapshots live under
 * $KILN_ROOT/snapshots. A committed snapshot is immutable and may be a lower
 * dir of any number of active ones.
 */
export interface Rootfs {
  /** The mounted (overlay) or copied directory a step works in. */
  readonly path: string;
  /** Unmount / clean up. Idempotent. */
  release(): Promise<void>;
}

export type SnapshotterKind = 'overlay' | 'copy';

/**
 * Third argument of a createCommitted() fill: how to write whiteouts into `dir`.
 * In 'overlay' mode `dir` becomes a lower dir of overlay mounts made with
 * `userxattr`: a deleted path is a 0/0 character device and an opaque directory
 * carries the xattr `opaqueXattr` = "y" (user.overlay.opaque, honoured both as
 * root and inside a user namespace). In 'copy' mode `dir` already holds the
 * parent's files: whiteouts delete from it.
 */
export interface FillInfo {
  opaqueXattr: string;
}

/**
 * What a fill may tell createCommitted(). `opaqueMarksAsAsked`: every opaque
 * directory was marked with FillInfo.opaqueXattr only (kiln's layer apply does
 * this), so the overlay snapshotter skips its walk that converts
 * trusted.overlay.opaque marks left by other tools.
 */
export interface FillResult {
  opaqueMarksAsAsked?: boolean;
}

export interface Snapshotter {
  readonly kind: SnapshotterKind;
  /** Why this kind was chosen (e.g. why overlay was not usable); for `kiln doctor` and --debug output. */
  readonly reason?: string;
  /** True when a committed snapshot with this id exists. */
  exists(id: string): Promise<boolean>;
  /**
   * Create committed snapshot `id` on top of `parent` by running `fill` on an
   * empty (overlay) or parent-copied (copy) directory — used to extract a layer
   * (id = chain id). Idempotent and safe when two processes race.
   */
  createCommitted(
    id: string,
    parent: string | undefined,
    fill: (dir: string, mode: 'overlay' | 'copy', info: FillInfo) => Promise<void | FillResult>,
  ): Promise<void>;
  /** A writable rootfs on top of committed `parent` (undefined: empty). */
  prepare(key: string, parent: string | undefined): Promise<Rootfs>;
  /**
   * prepare for a step that writes only at or below `dest` (an absolute path in the rootfs),
   * some part of which no layer of `parent` has. Undefined when every part exists (or the
   * snapshotter cannot), and the caller prepares. An overlay snapshot is then its own upper
   * dir, unmounted, with the existing directories above the new part copied up: nothing below
   * the new part can show through, so a mount would leave the same tree, at twice the cost
   * per file, and only a plain directory can take hard links from a view.
   */
  prepareFresh?(key: string, parent: string, dest: string): Promise<Rootfs | undefined>;
  /**
   * A read-only rootfs of committed `parent`, held under `key` like an active snapshot (the
   * parent cannot be removed meanwhile) until remove(key). Nothing may write to it. Where the
   * snapshotter can, it is the committed directory itself, neither mounted nor copied: a copy
   * snapshot always, an overlay one whose chain is one layer. Its files may then be hard-linked
   * into a new snapshot, since committed directories never change.
   */
  view(key: string, parent: string): Promise<Rootfs>;
  /**
   * What changed in active snapshot `key` against its parent, and where to read the new state from.
   * Changes are sorted by path (byte order), at most one per path. A 'delete' names the topmost
   * deleted path only; an `opaque` directory hides everything below it in the parent (its new
   * children are listed as 'add'). 'add' vs 'modify' tells whether the path existed in the parent.
   * `root` may hold overlay-private xattrs (user.overlay.*, trusted.overlay.*): a layer writer must
   * not copy those into tar headers. `xattrs`, when the snapshotter read them anyway: every
   * xattr of every path under `root` (absolute path → name → value; absent = none), for the
   * layer writer. Valid until commit/remove of `key`.
   */
  changes(key: string): Promise<{ root: string; changes: Change[]; xattrs?: Map<string, Map<string, Buffer>> }>;
  /**
   * lstat of each path (relative to the root) as the parent of active `key` has it, read without
   * mounting anything: undefined when absent there, or when kiln cannot be sure (see
   * statThroughLayers). For leaving out directories a step did not really change.
   */
  parentStats(key: string, paths: string[]): Promise<Map<string, Stats | undefined>>;
  /** Turn active `key` into committed `id`. The rootfs is released first. Idempotent if `id` already exists (ours is discarded). */
  commit(key: string, id: string): Promise<void>;
  /** Drop an active or committed snapshot. A committed one that is still a parent of another refuses (SNAPSHOT_IN_USE). */
  remove(keyOrId: string): Promise<void>;
  /** Every committed snapshot of this kind (no sizes: see usage()). Active ones are listed by listActive(). */
  list(): Promise<SnapshotInfo[]>;
  /** Parents of the active snapshots (any live or stale process): these and their chains are in use. */
  listActiveParents(): Promise<string[]>;
  /** Bytes a committed snapshot takes on disk (walks its tree; hard links counted once). */
  usage(id: string): Promise<number>;
}

/** A committed snapshot as list() reports it. */
export interface SnapshotInfo {
  id: string;
  parent: string | null;
  kind: SnapshotterKind;
  /** ISO time of the commit. */
  created: string;
}

export interface CreateSnapshotterOptions {
  /** kiln's state directory ($KILN_ROOT); snapshots live in `<root>/snapshots/<kind>/`. */
  root: string;
  /** 'auto' (default) picks overlay when a real test mount works, else copy. */
  kind?: 'auto' | SnapshotterKind;
  /**
   * Overlay only: chains deeper than this are mounted over a flattened copy of their lower part
   * (default 128; the kernel allows 500 lower dirs and one page of mount options).
   */
  maxLowers?: number;
}
