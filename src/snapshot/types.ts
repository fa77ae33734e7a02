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

export interface Snapshotter {
  readonly kind: 'overlay' | 'copy';
  /** True when a committed snapshot with this id exists. */
  exists(id: string): Promise<boolean>;
  /**
   * Create committed snapshot `id` on top of `parent` by running `fill` on an
   * empty (overlay) or parent-copied (copy) directory — used to extract a layer
   * (id = chain id). Idempotent and safe when two processes race.
   */
  createCommitted(id: string, parent: string | undefined, fill: (dir: string, mode: 'overlay' | 'copy') => Promise<void>): Promise<void>;
  /** A writable rootfs on top of committed `parent` (undefined: empty). */
  prepare(key: string, parent: string | undefined): Promise<Rootfs>;
  /** What changed in active snapshot `key` against its parent, and where to read the new state from. */
  changes(key: string): Promise<{ root: string; changes: Change[] }>;
  /** Turn active `key` into committed `id`. The rootfs is released first. */
  commit(key: string, id: string): Promise<void>;
  /** Drop an active or committed snapshot. */
  remove(keyOrId: string): Promise<void>;
}
