import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { which } from '../util/which.js';
import { cachedProbe, fileIdentity } from '../util/host-probe-cache.js';
import { mountOverlay, overlayVolatile, setOverlayVolatile, unmount } from './overlay-mount.js';
import { opaqueDirs } from './opaque-xattr.js';

export interface OverlaySupport {
  ok: boolean;
  /** Writable mounts take `volatile` (see overlay-mount.ts). */
  volatile?: boolean;
  /** Why overlay cannot be used (first failure), when !ok. */
  reason?: string;
}

const cache = new Map<string, Promise<OverlaySupport>>();

/** `parent` exists (overlaySupport makes it). */
async function probe(parent: string): Promise<OverlaySupport> {
  const dir = await mkdtemp(join(parent, `${process.pid}-probe-`));
  const merged = join(dir, 'm');
  let mounted = false;
  try {
    await Promise.all(['l/d', 'u', 'w', 'm'].map((d) => mkdir(join(dir, d), { recursive: true })));
    await writeFile(join(dir, 'l', 'f'), 'x');
    await writeFile(join(dir, 'l', 'd', 'x'), 'x');
    await mountOverlay({ cwd: dir, lowers: ['l'], upper: 'u', work: 'w', target: merged });
    mounted = true;
    await rm(join(merged, 'f'));
    await rm(join(merged, 'd'), { recursive: true });
    await mkdir(join(merged, 'd'));
    await writeFile(join(merged, 'd', 'y'), 'y');
    await unmount(merged);
    mounted = false;
    const wh = await stat(join(dir, 'u', 'f')).catch(() => undefined);
    if (!wh || !wh.isCharacterDevice() || wh.rdev !== 0) return { ok: false, reason: 'overlay did not record a deletion as a 0/0 whiteout device' };
    const opaque = await opaqueDirs([join(dir, 'u', 'd')]);
    if (!opaque.size) return { ok: false, reason: 'overlay did not mark a re-created directory opaque (user.overlay.opaque)' };
    return { ok: true, volatile: overlayVolatile() === true };
  } catch (err) {
    const e = err as Error & { stderrTail?: string[]; cause?: { stderrTail?: string[] } };
    const detail = e.cause?.stderrTail?.join(' ') || e.stderrTail?.join(' ') || e.message;
    return { ok: false, reason: `test overlay mount failed: ${detail}` };
  } finally {
    if (mounted) await unmount(merged).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Can this process mount overlay with `userxattr` (upper dir on the filesystem of `dir`) and
 * read back whiteouts and opaque marks? Tries a real mount once per process and directory.
 */
export function overlaySupport(dir: string = tmpdir()): Promise<OverlaySupport> {
  let p = cache.get(dir);
  if (!p) {
    // Remembered across processes per filesystem (its device), as the result depends on it, not on the path.
    p = mkdir(dir, { recursive: true })
      .then(() => stat(dir))
      .then((st) => cachedProbe('overlay', [st.dev, fileIdentity(which('mount')), fileIdentity(which('getfattr'))], () => probe(dir), { keep: (r) => r.ok }))
      .then((r) => {
        if (r.ok && r.volatile !== undefined) setOverlayVolatile(r.volatile);
        return r;
      });
    cache.set(dir, p);
  }
  return p;
}

export async function overlaySupported(dir?: string): Promise<boolean> {
  return (await overlaySupport(dir)).ok;
}
