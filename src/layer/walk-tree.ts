import { readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Change } from './types.js';

/**
 * Every path below `root` as an 'add' change (directories not followed
 * through symlinks). For committing a whole directory as a layer: the first
 * layer of a rootfs, `COPY` into scratch, benchmarks.
 */
export async function changesFromTree(root: string): Promise<Change[]> {
  const out: Change[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(rel === '' ? root : posix.join(root, rel), { withFileTypes: true });
    for (const e of entries) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      out.push({ kind: 'add', path: p });
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk('');
  return out;
}
