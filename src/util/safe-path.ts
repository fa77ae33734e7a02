import { lstat, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { KilnError } from '../errors.js';

const MAX_SYMLINKS = 255;

/**
 * Resolve `path` as if `root` were "/": symlinks are followed, but absolute
 * targets are taken relative to root and ".." never climbs above root, so
 * the result always lies inside root (as chroot would see it).
 * Components that do not exist are kept as written (the result may not exist).
 * With followFinal=false the last component is not dereferenced (lstat semantics).
 * Returns an absolute host path.
 */
export async function resolveInRoot(root: string, path: string, followFinal = true): Promise<string> {
  const rootAbs = posix.resolve(root);
  let pending = splitPath(path);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.' || part === '') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = posix.join(rootAbs, ...resolved, part);
    const isFinal = pending.length === 0;
    if (isFinal && !followFinal) {
      resolved.push(part);
      break;
    }
    let st;
    try {
      st = await lstat(candidate);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        resolved.push(part, ...pending.filter((p) => p !== '.' && p !== ''));
        return normalizeInside(rootAbs, resolved);
      }
      throw err;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) {
        throw new KilnError('PATH_LOOP', `Cannot resolve "${path}" inside "${root}": too many levels of symbolic links`);
      }
      const target = await readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      pending = [...splitPath(target), ...pending];
      continue;
    }
    resolved.push(part);
  }
  return normalizeInside(rootAbs, resolved);
}

function splitPath(p: string): string[] {
  return p.split('/').filter((x) => x !== '');
}

function normalizeInside(root: string, parts: string[]): string {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '..') out.pop();
    else if (p !== '.' && p !== '') out.push(p);
  }
  return out.length === 0 ? root : posix.join(root, ...out);
}

/** True when `p` (absolute, normalised) is root or below it. */
export function isInside(root: string, p: string): boolean {
  const r = posix.resolve(root);
  const q = posix.resolve(p);
  return q === r || q.startsWith(r.endsWith('/') ? r : r + '/');
}
