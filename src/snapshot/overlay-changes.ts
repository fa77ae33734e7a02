import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Change } from '../layer/types.js';
import { getXattrsUnder } from '../layer/xattr.js';
import { opaqueIn } from './opaque-xattr.js';

interface UpperEntry {
  rel: string;
  type: 'dir' | 'whiteout' | 'other';
}

/** Pre-order walk of an overlay upper dir; parents come before their children. */
async function walkUpper(upper: string): Promise<UpperEntry[]> {
  const out: UpperEntry[] = [];
  const visit = async (rel: string): Promise<void> => {
    const dirents: Dirent[] = await readdir(rel ? join(upper, rel) : upper, { withFileTypes: true });
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const kinds = await Promise.all(
      dirents.map(async (d) => {
        if (d.isDirectory()) return 'dir' as const;
        if (d.isCharacterDevice()) {
          const st = await lstat(join(upper, rel, d.name), { bigint: true });
          if (st.rdev === 0n) return 'whiteout' as const;
        }
        return 'other' as const;
      }),
    );
    for (let i = 0; i < dirents.length; i++) {
      const child = rel ? `${rel}/${dirents[i]!.name}` : dirents[i]!.name;
      out.push({ rel: child, type: kinds[i]! });
      if (kinds[i] === 'dir') await visit(child);
    }
  };
  await visit('');
  return out;
}

/**
 * Does `rel` exist in the stack of lower dirs (topmost first)? The topmost layer holding the
 * path decides; a 0/0 character device there is a whiteout. Opaque directories inside lower
 * layers are not consulted, so a path hidden by one counts as existing — this only turns an
 * 'add' into a 'modify', which writes the same layer.
 */
async function existsBelow(lowers: string[], rel: string): Promise<boolean> {
  for (const lower of lowers) {
    try {
      const st = await lstat(join(lower, rel), { bigint: true });
      return !(st.isCharacterDevice() && st.rdev === 0n);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
  }
  return false;
}

const byPath = (a: Change, b: Change) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/**
 * The changes an overlay upper dir records against its lower dirs (absolute, topmost first).
 * Reads only the upper dir (plus one lstat per lower for paths that are not below a new or
 * opaque directory) and one getfattr for its xattrs (opaque marks included, returned for the
 * layer writer): the cost grows with what changed, not with the size of the lower layers.
 */
export async function overlayChanges(upper: string, lowers: string[]): Promise<{ changes: Change[]; xattrs: Map<string, Map<string, Buffer>> }> {
  // One getfattr process dumps every xattr under the upper dir while this process walks the
  // same tree: the opaque marks come from it, and the layer writer reuses the rest.
  const [entries, xattrs] = await Promise.all([walkUpper(upper), getXattrsUnder(upper)]);
  const opaque = opaqueIn(xattrs);
  const dirs = entries.filter((e) => e.type === 'dir');
  /** Directories whose whole content is new: created in the step, or opaque. */
  const fresh = new Set<string>();
  const parentOf = (rel: string) => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
  const existed = new Map<string, boolean>();
  // Directories first, parents before children, so `fresh` is known when their entries are looked up.
  for (const d of dirs) {
    if (fresh.has(parentOf(d.rel))) {
      fresh.add(d.rel);
      continue;
    }
    const was = await existsBelow(lowers, d.rel);
    existed.set(d.rel, was);
    if (!was || opaque.has(join(upper, d.rel))) fresh.add(d.rel);
  }
  const others = entries.filter((e) => e.type === 'other' && !fresh.has(parentOf(e.rel)));
  const answers = await Promise.all(others.map((e) => existsBelow(lowers, e.rel)));
  others.forEach((e, i) => existed.set(e.rel, answers[i]!));

  const changes: Change[] = [];
  for (const e of entries) {
    if (fresh.has(parentOf(e.rel))) {
      if (e.type !== 'whiteout') changes.push({ kind: 'add', path: e.rel });
      continue;
    }
    if (e.type === 'whiteout') {
      changes.push({ kind: 'delete', path: e.rel });
      continue;
    }
    const change: Change = { kind: existed.get(e.rel) ? 'modify' : 'add', path: e.rel };
    if (e.type === 'dir' && opaque.has(join(upper, e.rel))) change.opaque = true;
    changes.push(change);
  }
  return { changes: changes.sort(byPath), xattrs };
}
