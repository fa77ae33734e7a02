import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { opaqueDirs } from './opaque-xattr.js';

/** lstat, or undefined for any error. */
export function lstatMaybe(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/**
 * lstat of `paths` (relative, no "." or "..") as a stack of layer dirs
 * (absolute, topmost first) shows them merged, overlay-style, without
 * mounting: the topmost layer holding a path decides; a 0/0 character device
 * there is a whiteout (when `whiteouts`); a non-directory at one of its parents
 * in a layer above hides it, and so does an opaque directory there
 * (user/trusted.overlay.opaque, read for all paths with one getfattr, only when
 * the path comes from below the top layer). Parents are checked from the root
 * down in each layer, so no symlink is ever followed.
 *
 * undefined: absent, or not certain (a parent that is not a real directory in
 * the deciding layer). Callers use it only to leave out what did not change,
 * so "not certain" must mean "keep".
 */
export async function statThroughLayers(layers: string[], paths: string[], whiteouts: boolean): Promise<Map<string, Stats | undefined>> {
  const out = new Map<string, Stats | undefined>();
  const needsOpaqueCheck = new Map<string, string[]>();
  for (const path of paths) {
    const parts = path.split('/');
    let result: Stats | undefined;
    const above: string[] = [];
    for (const layer of layers) {
      let found: Stats | undefined;
      let hidden = false;
      const dirsHere = [layer];
      for (let i = 0; i < parts.length; i++) {
        const st = lstatMaybe(join(layer, ...parts.slice(0, i + 1)));
        if (!st) break;
        if (i === parts.length - 1) found = st;
        else if (st.isDirectory()) dirsHere.push(join(layer, ...parts.slice(0, i + 1)));
        else hidden = true; // a file, symlink or whiteout where a parent should be: nothing below shows through
        if (found || hidden) break;
      }
      if (found) {
        if (!(whiteouts && found.isCharacterDevice() && found.rdev === 0)) result = found;
        break;
      }
      if (hidden) break;
      above.push(...dirsHere);
    }
    out.set(path, result);
    if (result && above.length > 0) needsOpaqueCheck.set(path, above);
  }
  if (needsOpaqueCheck.size > 0) {
    const opaque = await opaqueDirs([...new Set([...needsOpaqueCheck.values()].flat())]);
    for (const [path, dirs] of needsOpaqueCheck) if (dirs.some((d) => opaque.has(d))) out.set(path, undefined);
  }
  return out;
}
