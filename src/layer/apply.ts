import { closeSync, constants as C, fchmodSync, fchownSync, fstatSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readlinkSync, type Stats, symlinkSync, writeSync } from 'node:fs';
import { lstat, lutimes, readdir, realpath, rm, unlink, writeFile, chmod } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors.js';
import { resolveInRoot } from '../util/safe-path.js';
import { runToolCollect } from '../util/tool-launcher.js';
import { decompressed } from './decompress.js';
import { formatOverrideStat, OVERRIDE_STAT_XATTR } from './override-stat.js';
import type { TarHeader } from './tar-header.js';
import { readTar } from './tar-reader.js';
import { inflateOffThread } from './inflate-off-thread.js';
import type { ApplyOptions, ApplyStats, StoredLayer } from './types.js';
import { setXattrs, type XattrSet } from './xattr.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const MAX_LINKS = 40;
const TOOL_TIMEOUT_MS = 30_000;

/** A refused chown names the entry and the way out; other errors pass through. */
function chownFailure(err: unknown, h: TarHeader): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EPERM' || code === 'EINVAL') {
    return new KilnError('LAYER_CHOWN_DENIED', `Cannot apply layer entry "${h.name}": chown to ${h.uid}:${h.gid} is not permitted`, {
      hint: 'Run with a subordinate id range (newuidmap), or in single-id rootless mode (ownership recorded in user.containers.override_stat).',
      cause: err,
    });
  }
  return err;
}

export function unsafeEntry(name: string, why: string): KilnError {
  return new KilnError('LAYER_UNSAFE_ENTRY', `Cannot apply layer entry "${name}": ${why}`, {
    hint: 'The layer tries to reach outside its root or is malformed; it was refused. Discard the partially extracted directory.',
  });
}

/**
 * Normalise an archive path to "a/b/c" ('' is the root). Leading "/" are
 * dropped (absolute names land inside the root, as GNU tar and containerd do);
 * any ".." component is refused outright.
 */
export function normalizeEntryPath(name: string): string {
  if (name.includes('\0')) throw unsafeEntry(name, 'NUL byte in name');
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw unsafeEntry(name, '".." in path');
    parts.push(p);
  }
  return parts.join('/');
}

/** Xattrs a layer may not set: overlayfs control attributes and our own ownership record. */
function xattrAllowed(name: string): boolean {
  return !(name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.') || name === OVERRIDE_STAT_XATTR);
}

async function runTool(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const r = await runToolCollect([cmd, ...args], { timeoutMs: TOOL_TIMEOUT_MS });
  return { code: r.code, stderr: r.stderr.toString().trim() };
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** lstatOrUndefined, synchronously: the per-entry calls of an apply (see Applier.file). */
function lstatOrUndefinedSync(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

interface PendingXattr extends XattrSet {
  ino: number;
  type: number;
  name: string;
}

/**
 * Extract one layer into `target`. Path safety rests on three rules: every
 * parent directory is resolved chroot-style inside the root (symlinks are
 * followed as if root were "/", ".." never climbs out); the final component is
 * never followed (files are created O_EXCL|O_NOFOLLOW after removing what was
 * there, metadata goes through the new fd or l* calls); and deferred work
 * (xattrs, directory mtimes) re-checks at the end that its path still has no
 * symlink in it and names the same inode.
 */
class Applier {
  private readonly dirCache = new Map<string, string>();
  private readonly layerPaths = new Set<string>();
  private readonly xattrs: PendingXattr[] = [];
  private readonly dirTimes = new Map<string, { host: string; ino: number; mtime: number; mode: number }>();
  readonly stats: ApplyStats = { entries: 0, bytes: 0 };
  private readonly overlay: boolean;
  private readonly isRoot = process.getuid?.() === 0;
  private readonly euid = process.geteuid?.() ?? -1;
  private readonly egid = process.getegid?.() ?? -1;
  /**
   * Directories this apply created empty, without setgid (or the root, when it
   * started empty): a name in one that we did not create cannot exist, and new
   * files there belong to euid:egid. Saves an lstat and a chown per entry when
   * extracting into an empty directory (every overlay lower dir).
   */
  private readonly fresh = new Set<string>();
  /** Host paths this apply created (their names may hold anything now). */
  private readonly created = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly options: ApplyOptions,
  ) {
    this.overlay = options.whiteoutMode === 'overlay';
  }

  async init(): Promise<void> {
    const st = await lstat(this.root);
    if ((st.mode & 0o2000) === 0 && (await readdir(this.root)).length === 0) this.fresh.add(this.root);
  }

  private noteCreated(parent: string, host: string, isDir: boolean): void {
    this.created.add(host);
    if (isDir && this.fresh.has(parent)) this.fresh.add(host);
  }

  private warn(message: string): void {
    this.options.onWarning?.(message);
  }

  /** Host path of directory `rel`, created (0755) where missing; symlinks followed inside the root. */
  private async ensureDir(rel: string, entry: string): Promise<string> {
    if (rel === '') return this.root;
    const cached = this.dirCache.get(rel);
    if (cached !== undefined) return cached;
    // Start from the nearest ancestor already resolved (the parent, for most entries).
    let pending = rel.split('/');
    let resolved: string[] = [];
    for (let k = pending.length - 1; k > 0; k--) {
      const base = this.dirCache.get(pending.slice(0, k).join('/'));
      if (base === undefined) continue;
      resolved = base === this.root ? [] : base.slice(this.root.length + 1).split('/');
      pending = pending.slice(k);
      break;
    }
    let links = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        resolved.pop();
        continue;
      }
      const host = posix.join(this.root, ...resolved, part);
      const st = lstatOrUndefinedSync(host);
      if (st === undefined) {
        mkdirSync(host, { mode: 0o755 });
        this.noteCreated(posix.join(this.root, ...resolved), host, true);
        resolved.push(part);
      } else if (st.isDirectory()) {
        resolved.push(part);
      } else if (st.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw unsafeEntry(entry, 'too many levels of symbolic links');
        const target = readlinkSync(host);
        if (target.startsWith('/')) resolved = [];
        pending = [...target.split('/'), ...pending];
      } else {
        throw unsafeEntry(entry, `parent "${[...resolved, part].join('/')}" is not a directory`);
      }
    }
    const out = resolved.length === 0 ? this.root : posix.join(this.root, ...resolved);
    this.dirCache.set(rel, out);
    return out;
  }

  private async removeExisting(host: string, st: Stats): Promise<void> {
    if (st.isDirectory()) await rm(host, { recursive: true, force: true });
    else await unlink(host);
    if (st.isDirectory() || st.isSymbolicLink()) this.dirCache.clear();
  }

  private markLayerPath(rel: string): void {
    let p = rel;
    while (p !== '' && !this.layerPaths.has(p)) {
      this.layerPaths.add(p);
      p = posix.dirname(p) === '.' ? '' : posix.dirname(p);
    }
  }

  private ownershipXattr(h: TarHeader, type: TarHeader['type']): Array<[string, Buffer]> {
    if (!this.options.useOverrideStat) return [];
    if (h.uid === 0 && h.gid === 0 && type !== 'char' && type !== 'block') return [];
    return [[OVERRIDE_STAT_XATTR, formatOverrideStat({ uid: h.uid, gid: h.gid, mode: h.mode, type, devmajor: h.devmajor, devminor: h.devminor })]];
  }

  /** chown a path without following it, synchronously (symlinks and special files). */
  private chownPath(host: string, h: TarHeader): void {
    if (this.options.useOverrideStat) return;
    try {
      lchownSync(host, h.uid, h.gid);
    } catch (err) {
      throw chownFailure(err, h);
    }
  }

  /** chown through an open descriptor, synchronously (see file()). */
  private chownFd(fd: number, h: TarHeader): void {
    if (this.options.useOverrideStat) return;
    try {
      fchownSync(fd, h.uid, h.gid);
    } catch (err) {
      throw chownFailure(err, h);
    }
  }

  private queueXattrs(rel: string, host: string, st: { ino: number; mode: number }, h: TarHeader, extra: Array<[string, Buffer]>): void {
    const attrs: Array<[string, Buffer]> = [];
    for (const [k, v] of h.xattrs) {
      if (xattrAllowed(k)) attrs.push([k, v]);
      else this.warn(`Skipped xattr "${k}" on "${h.name}": layers may not set it`);
    }
    attrs.push(...extra);
    if (attrs.length > 0) this.xattrs.push({ path: host, attrs, ino: st.ino, type: st.mode & C.S_IFMT, name: rel });
  }

  async entry(h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    this.stats.entries++;
    const rel = normalizeEntryPath(h.name);
    const base = posix.basename(rel);
    const parentRel = rel.includes('/') ? posix.dirname(rel) : '';
    if (base.startsWith(WHITEOUT)) return this.whiteout(h, parentRel, base);
    if (rel === '') {
      if (h.type !== 'dir') throw unsafeEntry(h.name, `the root may only be a directory, not a ${h.type}`);
      return this.directory(h, '', this.root);
    }
    this.markLayerPath(rel);
    const parent = await this.ensureDir(parentRel, h.name);
    const host = posix.join(parent, base);
    const inFresh = this.fresh.has(parent) && !this.created.has(host);
    const existing = inFresh ? undefined : lstatOrUndefinedSync(host);
    this.noteCreated(parent, host, h.type === 'dir');
    switch (h.type) {
      case 'dir':
        if (existing && !existing.isDirectory()) await this.removeExisting(host, existing);
        if (!existing || !existing.isDirectory()) mkdirSync(host, { mode: 0o700 });
        return this.directory(h, rel, host);
      case 'file':
        if (existing) await this.removeExisting(host, existing);
        return this.file(h, rel, host, body, inFresh);
      case 'symlink': {
        if (existing) await this.removeExisting(host, existing);
        // No dirCache.clear(): a cached directory path never runs through a name that did not
        // exist, and removeExisting() already cleared it when a directory or link was replaced.
        symlinkSync(h.linkname, host);
        this.chownPath(host, h);
        lutimesSync(host, h.mtime, h.mtime);
        this.queueXattrs(rel, host, lstatSync(host), h, []);
        return;
      }
      case 'link':
        return this.hardlink(h, rel, host, existing);
      case 'char':
      case 'block':
      case 'fifo':
        if (existing) await this.removeExisting(host, existing);
        return this.special(h, rel, host);
    }
  }

  /*
   * Directories and files are made with synchronous calls on their descriptor. Awaited, each
   * call is a thread-pool round trip shared with the decompressor; a 20,000-file layer then
   * spent most of its time waiting on ~120,000 of them one after another.
   */
  private directory(h: TarHeader, rel: string, host: string): void {
    const fd = openSync(host, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
    try {
      this.chownFd(fd, h);
      // The mode is set at the end (a 0500 directory must still take its children when we are not root).
      const st = fstatSync(fd);
      this.queueXattrs(rel, host, st, h, this.ownershipXattr(h, 'dir'));
      this.dirTimes.set(rel, { host, ino: st.ino, mtime: h.mtime, mode: h.mode });
    } finally {
      closeSync(fd);
    }
  }

  private async file(h: TarHeader, rel: string, host: string, body: AsyncIterable<Buffer>, inFresh: boolean): Promise<void> {
    const fd = openSync(host, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of body) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        this.stats.bytes += chunk.length;
      }
      if (!(inFresh && h.uid === this.euid && h.gid === this.egid)) this.chownFd(fd, h);
      fchmodSync(fd, h.mode);
      futimesSync(fd, h.mtime, h.mtime);
      const extra = this.ownershipXattr(h, 'file');
      if (h.xattrs.size > 0 || extra.length > 0) this.queueXattrs(rel, host, fstatSync(fd), h, extra);
    } finally {
      closeSync(fd);
    }
  }

  private async hardlink(h: TarHeader, rel: string, host: string, existing: Stats | undefined): Promise<void> {
    const targetRel = normalizeEntryPath(h.linkname);
    if (targetRel === '') throw unsafeEntry(h.name, 'hardlink to the root');
    // The target's parents resolve as an entry's do (chroot-style, cached); its last component is not followed.
    const slash = targetRel.lastIndexOf('/');
    const targetHost = posix.join(await this.ensureDir(slash === -1 ? '' : targetRel.slice(0, slash), h.name), targetRel.slice(slash + 1));
    const target = lstatOrUndefinedSync(targetHost);
    if (!target) throw unsafeEntry(h.name, `hardlink target "${h.linkname}" does not exist in the layer`);
    if (target.isDirectory()) throw unsafeEntry(h.name, `hardlink target "${h.linkname}" is a directory`);
    if (existing) {
      if (existing.ino === target.ino && existing.dev === target.dev) return;
      await this.removeExisting(host, existing);
    }
    linkSync(targetHost, host);
    if (target.isSymbolicLink()) this.dirCache.clear();
  }

  private async special(h: TarHeader, rel: string, host: string): Promise<void> {
    if (h.type !== 'fifo' && this.options.useOverrideStat) {
      // Single-id rootless cannot mknod: keep the node as an empty file whose override_stat says what it is.
      await writeFile(host, '', { flag: C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode: 0o600 });
      await chmod(host, h.mode & 0o777);
      await lutimes(host, h.mtime, h.mtime);
      const st = await lstat(host);
      this.queueXattrs(rel, host, st, h, this.ownershipXattr(h, h.type));
      return;
    }
    const mode = (h.mode & 0o7777).toString(8);
    const r =
      h.type === 'fifo'
        ? await runTool('mkfifo', ['-m', mode, '--', host])
        : await runTool('mknod', ['-m', mode, '--', host, h.type === 'char' ? 'c' : 'b', String(h.devmajor), String(h.devminor)]);
    if (r.code !== 0) {
      if (h.type !== 'fifo' && !this.isRoot) {
        this.warn(`Skipped device node "${h.name}" (${h.type} ${h.devmajor}:${h.devminor}): ${r.stderr || 'mknod not permitted'}`);
        return;
      }
      if (h.type !== 'fifo' && /Operation not permitted/.test(r.stderr)) {
        this.warn(`Skipped device node "${h.name}" (${h.type} ${h.devmajor}:${h.devminor}): ${r.stderr}`);
        return;
      }
      throw new KilnError('LAYER_APPLY_FAILED', `Cannot apply layer entry "${h.name}": ${h.type === 'fifo' ? 'mkfifo' : 'mknod'} failed: ${r.stderr}`);
    }
    const st = await lstat(host);
    if (st.isSymbolicLink()) throw unsafeEntry(h.name, 'node replaced during extraction');
    this.chownPath(host, h);
    await chmod(host, h.mode & 0o7777);
    await lutimes(host, h.mtime, h.mtime);
    this.queueXattrs(rel, host, st, h, this.ownershipXattr(h, h.type));
  }

  private async whiteout(h: TarHeader, parentRel: string, base: string): Promise<void> {
    if (base === OPAQUE) {
      const dir = await this.ensureDir(parentRel, h.name);
      if (parentRel !== '') this.markLayerPath(parentRel);
      if (this.overlay) {
        const st = await lstat(dir);
        const name = this.options.overlayOpaqueXattr ?? 'trusted.overlay.opaque';
        this.xattrs.push({ path: dir, attrs: [[name, Buffer.from('y')]], ino: st.ino, type: C.S_IFDIR, name: parentRel });
      } else {
        await this.removeLower(parentRel, dir);
      }
      return;
    }
    const name = base.slice(WHITEOUT.length);
    if (name === '' || name === '.' || name === '..') throw unsafeEntry(h.name, 'whiteout of an invalid name');
    const rel = parentRel === '' ? name : `${parentRel}/${name}`;
    if (this.overlay) {
      const parent = await this.ensureDir(parentRel, h.name);
      const host = posix.join(parent, name);
      const existing = await lstatOrUndefined(host);
      if (existing) await this.removeExisting(host, existing);
      this.noteCreated(parent, host, false);
      const r = await runTool('mknod', ['-m', '000', '--', host, 'c', '0', '0']);
      if (r.code !== 0) throw new KilnError('LAYER_APPLY_FAILED', `Cannot apply whiteout "${h.name}": mknod failed: ${r.stderr}`);
      return;
    }
    const parent = await resolveInRoot(this.root, parentRel === '' ? '.' : parentRel);
    const pst = await lstatOrUndefined(parent);
    if (!pst || !pst.isDirectory()) return; // nothing below to delete
    const host = posix.join(parent, name);
    const existing = await lstatOrUndefined(host);
    if (existing) await this.removeExisting(host, existing);
    void rel;
  }

  /** Opaque directory, delete mode: remove what lower layers put in `dirRel`, keep this layer's entries. */
  private async removeLower(dirRel: string, dirHost: string): Promise<void> {
    for (const child of await readdir(dirHost)) {
      const rel = dirRel === '' ? child : `${dirRel}/${child}`;
      const host = posix.join(dirHost, child);
      const st = await lstat(host);
      if (this.layerPaths.has(rel)) {
        if (st.isDirectory()) await this.removeLower(rel, host);
        continue;
      }
      await this.removeExisting(host, st);
    }
  }

  /** True when `host` lies in the root with no symlink among its components and names inode `ino` of file type `type`. */
  private stillSame(host: string, ino: number, type: number, clean: Map<string, boolean>): boolean {
    if (host !== this.root && !host.startsWith(this.root + '/')) return false;
    const parts = host === this.root ? [] : host.slice(this.root.length + 1).split('/');
    let cur = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      cur = posix.join(cur, parts[i]!);
      let ok = clean.get(cur);
      if (ok === undefined) {
        const st = lstatOrUndefinedSync(cur);
        ok = st !== undefined && st.isDirectory();
        clean.set(cur, ok);
      }
      if (!ok) return false;
    }
    const st = lstatOrUndefinedSync(host);
    // Inode numbers are reused at once: the type must match too.
    return st !== undefined && st.ino === ino && (st.mode & C.S_IFMT) === type;
  }

  /*
   * Synchronous, like directory() and file(): a Debian toolchain layer has ~2,000 directories,
   * and six awaited calls each (lstat, open, stat, chmod, utimes, close) took 0.6 s of a 2 s
   * apply, as thread-pool round trips one after another.
   */
  async finish(): Promise<void> {
    const clean = new Map<string, boolean>();
    const sets = this.xattrs.filter((x) => this.stillSame(x.path, x.ino, x.type, clean));
    for (const w of await setXattrs(sets)) this.warn(`Could not set an extended attribute: ${w}`);
    // Directory modes and mtimes last: adding children changed the mtimes; modes could have locked us out.
    for (const d of [...this.dirTimes.values()].reverse()) {
      if (!this.stillSame(d.host, d.ino, C.S_IFDIR, clean)) continue;
      let fd: number;
      try {
        fd = openSync(d.host, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
      } catch {
        continue; // not a directory any more (ENOTDIR/ELOOP): nothing of ours to fix
      }
      try {
        if (fstatSync(fd).ino !== d.ino) continue;
        fchmodSync(fd, d.mode);
        futimesSync(fd, d.mtime, d.mtime);
      } finally {
        closeSync(fd);
      }
    }
  }
}

/** See ApplyLayer in ./types.ts. */
export async function applyLayer(src: Readable | StoredLayer, target: string, options: ApplyOptions = {}): Promise<ApplyStats> {
  const root = await realpath(target);
  const applier = new Applier(root, options);
  await applier.init();
  let readable: Readable | undefined;
  let stream: AsyncIterable<Buffer> | undefined;
  if (isStoredLayer(src)) stream = inflateOffThread(src.store.blobPath(src.digest), src.digest, src.size);
  if (!stream) {
    readable = isStoredLayer(src) ? await src.store.open(src.digest) : src;
    stream = (await decompressed(readable)).stream;
  }
  let current = '';
  try {
    for await (const { header, body } of readTar(stream)) {
      current = header.name;
      await applier.entry(header, body);
    }
    current = '';
    await applier.finish();
  } catch (err) {
    if (readable && !readable.destroyed) readable.destroy();
    if (err instanceof KilnError) throw err;
    const where = current ? `entry "${current}"` : 'layer';
    throw new KilnError('LAYER_APPLY_FAILED', `Cannot apply ${where} into "${target}": ${(err as Error).message}`, { cause: err });
  }
  return applier.stats;
}

function isStoredLayer(src: Readable | StoredLayer): src is StoredLayer {
  return 'store' in src && 'digest' in src && typeof (src as StoredLayer).size === 'number';
}
