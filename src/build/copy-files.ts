import { copyFile, chmod, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { chmodSync, constants as fsConstants, copyFileSync, lchownSync, linkSync, lutimesSync } from 'node:fs';
import { posix } from 'node:path';
import { NotFoundError } from '../errors.js';
import { getXattrs, isOverlayXattr, setXattrs, type XattrSet } from '../layer/xattr.js';
import { isInside, resolveInRoot } from '../util/safe-path.js';
import { type ModeSpec, applyModeSpec } from './chmod-spec.js';
import { hasWildcard, matchComponent, matchPath } from './glob.js';
import { Semaphore } from './semaphore.js';

/** Decides which context paths exist for COPY (after .dockerignore). "/"-separated, relative. */
export type IncludeFilter = (rel: string, isDir: boolean) => boolean;

export interface Owner {
  uid: number;
  gid: number;
}

export interface CopyRequest {
  /** Host directory sources are read from (context dir, or a stage/image rootfs). */
  srcRoot: string;
  /** Sources from the build context: owners become 0:0 unless chown; symlinks resolve inside srcRoot. */
  fromContext: boolean;
  include?: IncludeFilter;
  /** Source paths/patterns as written (after expansion). */
  sources: string[];
  /** Heredoc or downloaded sources: file name → content. */
  inline?: Array<{ name: string; content: Buffer; mode?: number; mtime?: Date }>;
  /** Destination as written (after expansion); relative to workdir. */
  dest: string;
  workdir: string;
  /** Host path of the destination rootfs. */
  destRoot: string;
  chown?: Owner;
  chmod?: ModeSpec;
  /** --exclude patterns (matched like COPY wildcards against source-relative paths). */
  excludes?: string[];
  /** COPY --parents: keep each source's path (relative to the source root) under the destination directory. */
  parents?: boolean;
  /**
   * srcRoot never changes (a committed snapshot, or a private extraction): a file whose owner,
   * mode and times would come out as the source's is hard-linked, not copied. Nothing may later
   * write such a file in place (overlay copies a lower file up before changing it).
   */
  linkFiles?: boolean;
  /** Hook for ADD: return true when it handled `hostPath` (archive unpacked into `destDir`). */
  unpack?: (hostPath: string, destDir: string) => Promise<boolean>;
}

interface Match {
  /** Relative path under srcRoot as matched (for messages/cache). */
  rel: string;
  /** Host path, fully resolved (symlinks followed inside srcRoot). */
  host: string;
}

/** Expand one source (wildcards as Go's filepath.Match per component) into resolved matches. */
export async function expandSource(req: Pick<CopyRequest, 'srcRoot' | 'include'>, source: string): Promise<Match[]> {
  const clean = posix.normalize('/' + source).replace(/^\/+/, '');
  const parts = clean === '' || clean === '.' ? [] : clean.split('/');
  if (!parts.some(hasWildcard)) {
    const rel = parts.join('/');
    const host = await resolveInRoot(req.srcRoot, rel || '.', true);
    let isDir: boolean;
    try {
      isDir = (await lstat(host)).isDirectory();
    } catch {
      return [];
    }
    if (rel !== '' && req.include && !req.include(rel, isDir)) return [];
    return [{ rel: rel || '.', host }];
  }
  let current: Match[] = [{ rel: '', host: posix.resolve(req.srcRoot) }];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const last = i === parts.length - 1;
    const next: Match[] = [];
    for (const m of current) {
      if (!hasWildcard(p)) {
        const rel = m.rel ? `${m.rel}/${p}` : p;
        next.push({ rel, host: await resolveInRoot(req.srcRoot, rel, true) });
        continue;
      }
      let names: string[];
      try {
        names = (await readdir(m.host)).sort();
      } catch {
        continue;
      }
      for (const n of names) {
        if (!matchComponent(p, n)) continue;
        const rel = m.rel ? `${m.rel}/${n}` : n;
        const host = await resolveInRoot(req.srcRoot, rel, true);
        let isDir = false;
        try {
          isDir = (await stat(host)).isDirectory();
        } catch {
          if (!last) continue;
        }
        if (req.include && !req.include(rel, isDir)) continue;
        next.push({ rel, host });
      }
    }
    current = next;
  }
  const out: Match[] = [];
  for (const m of current) {
    try {
      await lstat(m.host);
      out.push(m);
    } catch {
      /* a fixed component after a wildcard did not exist */
    }
  }
  return out;
}

/**
 * COPY/ADD with BuildKit's rules: directories copy their contents, a trailing
 * "/" (or several sources, or an existing directory) makes the destination a
 * directory, symlinks in source paths resolve inside the source root, links
 * inside copied directories stay links, the destination resolves inside the
 * rootfs (a dangling link gets its target created). Created directories
 * belong to root (or --chown) and take --chmod.
 * Returns the matched relative source paths.
 */
export async function copyFiles(req: CopyRequest): Promise<string[]> {
  const matches: Match[] = [];
  for (const s of req.sources) {
    const found = await expandSource(req, s);
    if (found.length === 0 && !hasWildcard(s)) {
      throw new NotFoundError(`failed to compute cache key: failed to calculate checksum of ref: "/${posix.normalize(s).replace(/^\/+/, '')}": not found`, { code: 'COPY_SOURCE_NOT_FOUND' });
    }
    matches.push(...found);
  }
  const count = matches.length + (req.inline?.length ?? 0);
  const destAbs = posix.resolve(posix.join('/', req.workdir || '/'), req.dest || '.');
  const wantsDir = req.dest === '' || req.dest.endsWith('/') || req.dest === '.' || req.dest.endsWith('/.') || count > 1 || req.sources.some(hasWildcard) && count > 1;
  const destHost = await resolveInRoot(req.destRoot, destAbs, true);
  let destIsDir = wantsDir;
  try {
    if ((await stat(destHost)).isDirectory()) destIsDir = true;
  } catch {
    /* missing */
  }
  const excluded = (rel: string) => (req.excludes ?? []).some((x) => matchPath(x, rel) || matchPath(x, rel.split('/').slice(0, x.split('/').length).join('/')));

  for (const m of matches) {
    if (excluded(m.rel)) continue;
    const st = await stat(m.host).catch(() => lstat(m.host));
    if (req.parents && m.rel !== '.') {
      // --parents: the destination is a directory and the source keeps its relative path.
      const target = await resolveInRoot(req.destRoot, posix.join(destAbs, m.rel), true);
      await ensureDir(req, st.isDirectory() ? target : posix.dirname(target));
      if (st.isDirectory()) await copyTree(req, m.host, target, m.rel, excluded);
      else await copyEntry(req, m.host, target, st, true);
      continue;
    }
    if (st.isDirectory()) {
      await ensureDir(req, destHost);
      await copyTree(req, m.host, destHost, m.rel === '.' ? '' : m.rel, excluded);
      continue;
    }
    if (req.unpack && (await isRegular(m.host))) {
      const dir = destHost;
      await ensureDir(req, dir);
      if (await req.unpack(m.host, dir)) continue;
    }
    const target = destIsDir ? posix.join(destHost, posix.basename(m.rel)) : destHost;
    await ensureDir(req, destIsDir ? destHost : posix.dirname(destHost));
    await copyEntry(req, m.host, target, st, true);
  }
  for (const f of req.inline ?? []) {
    const target = destIsDir ? posix.join(destHost, f.name) : destHost;
    await ensureDir(req, posix.dirname(target));
    const safe = await resolveInRoot(req.destRoot, posix.relative(req.destRoot, target), true);
    await rm(safe, { force: true });
    await writeFile(safe, f.content);
    const mode = req.chmod ? applyModeSpec(req.chmod, f.mode ?? 0o644, false) : (f.mode ?? 0o644);
    await chmod(safe, mode);
    const o = req.chown ?? { uid: 0, gid: 0 };
    await lchown(safe, o.uid, o.gid);
    if (f.mtime) await lutimes(safe, f.mtime, f.mtime);
  }
  await copyXattrs(req);
  return matches.map((m) => m.rel);
}

async function isRegular(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** mkdir -p inside the rootfs; directories it creates get root (or --chown) and 0755 (or --chmod). */
async function ensureDir(req: CopyRequest, hostDir: string): Promise<void> {
  const rel = posix.relative(req.destRoot, hostDir);
  if (rel.startsWith('..')) throw new Error(`destination "${hostDir}" escapes the rootfs`);
  const parts = rel === '' ? [] : rel.split('/');
  let cur = '';
  for (const p of parts) {
    cur = cur ? `${cur}/${p}` : p;
    const host = await resolveInRoot(req.destRoot, cur, true);
    try {
      const st = await stat(host);
      if (st.isDirectory()) continue;
      throw new Error(`cannot copy to "/${cur}": not a directory`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await mkdir(host, { recursive: true });
    const mode = req.chmod ? applyModeSpec(req.chmod, 0o755, true) : 0o755;
    await chmod(host, mode);
    const o = req.chown ?? { uid: 0, gid: 0 };
    await lchown(host, o.uid, o.gid);
  }
}

/** At most 32 file copies in flight: a tree of small files is bound by fs round trips, not bytes. */
const fileOps = new Semaphore(32);

/** `destFresh`: `destDir` was just created by this copy, so nothing in it needs replacing. */
async function copyTree(req: CopyRequest, srcDir: string, destDir: string, relBase: string, excluded: (rel: string) => boolean, destFresh = false): Promise<void> {
  const names = (await readdir(srcDir)).sort();
  await Promise.all(names.map((n) => copyTreeEntry(req, srcDir, destDir, relBase, excluded, n, destFresh)));
}

async function copyTreeEntry(
  req: CopyRequest,
  srcDir: string,
  destDir: string,
  relBase: string,
  excluded: (rel: string) => boolean,
  n: string,
  destFresh: boolean,
): Promise<void> {
  {
    const rel = relBase ? `${relBase}/${n}` : n;
    const src = posix.join(srcDir, n);
    const st = await lstat(src);
    const filtered = req.fromContext && req.include !== undefined;
    if (filtered && !st.isDirectory() && !req.include!(rel, false)) return;
    if (excluded(rel)) return;
    const dest = posix.join(destDir, n);
    if (!isInside(req.destRoot, dest)) throw new Error(`refusing to write outside the rootfs: "${dest}"`);
    if (st.isDirectory()) {
      // An excluded directory is walked only when `!` exceptions may re-include
      // something below it, and kept only when something was.
      if (filtered && !req.include!(rel, true)) return;
      const selfExcluded = filtered && !req.include!(rel, false);
      let existed = false;
      if (!destFresh) {
        try {
          const d = await lstat(dest);
          if (d.isDirectory()) existed = true;
          else await rm(dest, { force: true });
        } catch {
          /* missing */
        }
      }
      if (!existed) await mkdir(dest);
      await copyTree(req, src, dest, rel, excluded, !existed);
      if (selfExcluded && !existed && (await readdir(dest)).length === 0) {
        await rm(dest, { recursive: true, force: true });
        return;
      }
      await applyMeta(req, dest, st, false);
      noteCopied(req, src, dest);
      return;
    }
    // `st` is already the entry's own lstat: copyEntry need not stat it again.
    await fileOps.run(() => copyEntry(req, src, dest, st, true, destFresh));
  }
}

/**
 * Copy one non-directory entry (file, symlink, other) to `dest` (which is
 * replaced unless `destFresh` says it cannot exist). `deref`: `st` describes
 * the entry as it should be copied; otherwise `src` is lstat'ed again.
 */
async function copyEntry(req: CopyRequest, src: string, dest: string, st: import('node:fs').Stats, deref: boolean, destFresh = false): Promise<void> {
  if (!destFresh) {
    try {
      const d = await lstat(dest);
      await rm(dest, { recursive: d.isDirectory(), force: true });
    } catch {
      /* missing */
    }
  }
  let lst = st;
  if (!deref) lst = await lstat(src);
  if (lst.isFile() && linkable(req, lst) && linked(req, src, dest)) return;
  if (lst.isFile() && lst.size <= SYNC_COPY_MAX) {
    copySmallFileSync(req, src, dest, lst);
    noteCopied(req, src, dest);
    return;
  }
  if (lst.isSymbolicLink()) {
    await symlink(await readlink(src), dest);
  } else if (lst.isFile()) {
    await copyFile(src, dest);
  } else {
    return; // devices, fifos and sockets are not copied by COPY
  }
  // copyFile creates the file with the source's permission bits (umask
  // aside); chown then keeps them unless setuid/setgid/sticky are involved.
  const modeCopied = lst.isFile() && !req.chmod && (lst.mode & 0o7000) === 0;
  await applyMeta(req, dest, lst, lst.isSymbolicLink(), modeCopied);
  noteCopied(req, src, dest);
}

/** Entries copied (not linked) from a stage or image, whose xattrs copyFiles copies at the end. */
const copiedFromImage = new WeakMap<CopyRequest, Array<[string, string]>>();

function noteCopied(req: CopyRequest, src: string, dest: string): void {
  if (req.fromContext) return;
  let list = copiedFromImage.get(req);
  if (!list) copiedFromImage.set(req, (list = []));
  list.push([src, dest]);
}

/**
 * COPY --from keeps each entry's xattrs (a file's capabilities, say), as BuildKit's copy does:
 * one getfattr over every copied source, one setfattr for those that have any. overlay's own
 * (user.overlay.*, trusted.overlay.*) stay behind. Like BuildKit, an xattr the destination
 * refuses (no privilege for trusted.*, user.* on a symlink) is left out, not an error.
 */
async function copyXattrs(req: CopyRequest): Promise<void> {
  const list = copiedFromImage.get(req);
  copiedFromImage.delete(req);
  if (!list || list.length === 0) return;
  const found = await getXattrs(list.map(([src]) => src));
  const sets: XattrSet[] = [];
  for (const [src, dest] of list) {
    const attrs = [...(found.get(src) ?? [])].filter(([name]) => !isOverlayXattr(name));
    if (attrs.length > 0) sets.push({ path: dest, attrs });
  }
  await setXattrs(sets);
}

/** Requests whose source and destination turned out to be on different filesystems (or links were refused). */
const linkRefused = new WeakSet<CopyRequest>();

/** A copy would give `st`'s owner, mode and times: a hard link shows exactly that. */
function linkable(req: CopyRequest, st: import('node:fs').Stats): boolean {
  if (!req.linkFiles || req.fromContext || req.chmod || linkRefused.has(req)) return false;
  return req.chown === undefined || (req.chown.uid === st.uid && req.chown.gid === st.gid);
}

/**
 * Hard-link `src` to `dest` (cleared by copyEntry); false when the copy must be made after all.
 * A link shares the source's xattrs too, as BuildKit's copy keeps them.
 */
function linked(req: CopyRequest, src: string, dest: string): boolean {
  try {
    linkSync(src, dest);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EMLINK: this inode is full of links; the next file may not be. Anything else holds for the whole request.
    if (code !== 'EMLINK') linkRefused.add(req);
    return false;
  }
}

/**
 * A small regular file (its destination already cleared by copyEntry) is copied, owned,
 * moded and dated with synchronous calls: each awaited call is a thread-pool round trip, and
 * for a 20,000-file COPY those round trips, not the bytes, were the cost.
 */
const SYNC_COPY_MAX = 128 * 1024;

function copySmallFileSync(req: CopyRequest, src: string, dest: string, st: import('node:fs').Stats): void {
  copyFileSync(src, dest, fsConstants.COPYFILE_EXCL);
  const owner = req.chown ?? (req.fromContext ? { uid: 0, gid: 0 } : { uid: st.uid, gid: st.gid });
  lchownSync(dest, owner.uid, owner.gid);
  // copyFile set the permission bits (umask aside) unless setuid/setgid/sticky or --chmod are involved.
  if (req.chmod || (st.mode & 0o7000) !== 0) chmodSync(dest, req.chmod ? applyModeSpec(req.chmod, st.mode & 0o7777, false) : st.mode & 0o7777);
  lutimesSync(dest, st.atime, st.mtime);
}

async function applyMeta(req: CopyRequest, dest: string, st: import('node:fs').Stats, isLink: boolean, modeCopied = false): Promise<void> {
  const owner = req.chown ?? (req.fromContext ? { uid: 0, gid: 0 } : { uid: st.uid, gid: st.gid });
  await lchown(dest, owner.uid, owner.gid);
  if (!isLink && !modeCopied) {
    const mode = req.chmod ? applyModeSpec(req.chmod, st.mode & 0o7777, st.isDirectory()) : st.mode & 0o7777;
    await chmod(dest, mode);
  }
  await lutimes(dest, st.atime, st.mtime);
}
