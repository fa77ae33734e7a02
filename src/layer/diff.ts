import { closeSync, constants as C, fstatSync, lstatSync, openSync, read, readlinkSync, readSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { KilnError } from '../errors.js';
import { OVERRIDE_STAT_XATTR, parseOverrideStat } from './override-stat.js';
import { encodeHeader, END_OF_ARCHIVE, padding, type EncodeHeader, type EntryType } from './tar-header.js';
import type { Change } from './types.js';
import { getXattrs, isOverlayXattr } from './xattr.js';

export const OPAQUE_MARKER = '.wh..wh..opq';
export const WHITEOUT_PREFIX = '.wh.';
/** Size of the chunks the tar stream is emitted in (also the parallel gzip block size). */
export const TAR_CHUNK = 1024 * 1024;

export interface LayerTarOptions {
  root: string;
  changes: Change[];
  sourceDateEpoch?: number;
  useOverrideStat?: boolean;
  onWarning?: (message: string) => void;
  /** Every xattr under `root`, already read (see WriteLayerOptions.xattrs). */
  xattrs?: Map<string, Map<string, Buffer>>;
}

type Planned = { kind: 'path'; path: string } | { kind: 'whiteout'; path: string } | { kind: 'opaque'; path: string };

function changeError(path: string, why: string): KilnError {
  return new KilnError('LAYER_BAD_CHANGE', `Cannot write layer: change "${path}" ${why}`);
}

function cleanChangePath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.some((x) => x === '..')) throw changeError(p, 'contains ".."');
  return parts.join('/');
}

function ancestors(p: string): string[] {
  const out: string[] = [];
  let cur = posix.dirname(p);
  while (cur !== '.' && cur !== '/') {
    out.push(cur);
    cur = posix.dirname(cur);
  }
  return out;
}

/**
 * Layer entry order: depth-first by path component, bytes compared as UTF-8,
 * with a directory's opaque marker first among its children (appliers that
 * clear on sight then keep this layer's own children).
 */
export function compareLayerPaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    if (x === OPAQUE_MARKER) return -1;
    if (y === OPAQUE_MARKER) return 1;
    return Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
  }
  return pa.length - pb.length;
}

function typeOf(st: Stats): EntryType | 'socket' {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function major(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function minor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

/** Storage metadata, never layer content. */
function keepXattr(name: string): boolean {
  return !(isOverlayXattr(name) || name === OVERRIDE_STAT_XATTR || name === 'security.selinux');
}

/** Fills fixed-size chunks; hands each full one out. */
class ChunkWriter {
  private buf = Buffer.allocUnsafe(TAR_CHUNK);
  private off = 0;
  readonly full: Buffer[] = [];

  put(data: Buffer): void {
    let pos = 0;
    while (pos < data.length) {
      const n = Math.min(data.length - pos, TAR_CHUNK - this.off);
      data.copy(this.buf, this.off, pos, pos + n);
      this.off += n;
      pos += n;
      if (this.off === TAR_CHUNK) this.rotate();
    }
  }

  zeros(n: number): void {
    this.put(Buffer.alloc(n));
  }

  /** Free space at the end of the current chunk, to read straight into. */
  space(): { buf: Buffer; off: number; len: number } {
    return { buf: this.buf, off: this.off, len: TAR_CHUNK - this.off };
  }

  advance(n: number): void {
    this.off += n;
    if (this.off === TAR_CHUNK) this.rotate();
  }

  private rotate(): void {
    this.full.push(this.buf);
    this.buf = Buffer.allocUnsafe(TAR_CHUNK);
    this.off = 0;
  }

  take(): Buffer[] {
    return this.full.splice(0);
  }

  rest(): Buffer {
    return this.buf.subarray(0, this.off);
  }
}

/**
 * The layer tar for a set of changes, as 1 MiB chunks. Deterministic: entries
 * sorted (compareLayerPaths), parents included, uname/gname empty, mtimes in
 * whole seconds (clamped to sourceDateEpoch), hardlinks within the layer kept
 * (same dev+ino → link entry to the first path), deletes as `.wh.<name>`,
 * opaque directories as `.wh..wh..opq`, sockets skipped with a warning.
 * Each file is opened O_NOFOLLOW and must still match its lstat size.
 */
export async function* layerTar(options: LayerTarOptions): AsyncGenerator<Buffer> {
  const root = posix.resolve(options.root);
  const plan = new Map<string, Planned>();
  for (const change of options.changes) {
    const path = cleanChangePath(change.path);
    for (const a of ancestors(path)) if (!plan.has(a)) plan.set(a, { kind: 'path', path: a });
    if (change.kind === 'delete') {
      if (path === '') throw changeError(change.path, 'deletes the root');
      const dir = posix.dirname(path);
      const w = `${dir === '.' ? '' : dir + '/'}${WHITEOUT_PREFIX}${posix.basename(path)}`;
      plan.set(w, { kind: 'whiteout', path: w });
    } else {
      if (path !== '') plan.set(path, { kind: 'path', path });
      if (change.opaque) {
        const m = path === '' ? OPAQUE_MARKER : `${path}/${OPAQUE_MARKER}`;
        plan.set(m, { kind: 'opaque', path: m });
      }
    }
  }
  const ordered = [...plan.values()].sort((a, b) => compareLayerPaths(a.path, b.path));
  const pathEntries = ordered.filter((p) => p.kind === 'path').map((p) => p.path);
  const stats = new Map<string, Stats>();
  // Synchronous, like the per-file reads below: a thread-pool round trip per path cost more than the lstat.
  for (const p of pathEntries) {
    try {
      stats.set(p, lstatSync(posix.join(root, p)));
    } catch (err) {
      throw changeError(p, `cannot be read from "${root}": ${(err as Error).message}`);
    }
  }
  // A path below a symlink would be read through it (possibly from outside the root): refuse.
  for (const p of pathEntries) {
    const parent = posix.dirname(p);
    if (parent !== '.' && !stats.get(parent)!.isDirectory()) throw changeError(p, `lies below "${parent}", which is not a directory`);
  }
  const xattrs = options.xattrs ?? (await getXattrs(pathEntries.map((p) => posix.join(root, p))));
  const epoch = options.sourceDateEpoch;
  const clamp = (t: number): number => (epoch !== undefined && t > epoch ? epoch : t);
  const markerTime = epoch ?? 0;
  const firstPathOfInode = new Map<string, string>();
  const out = new ChunkWriter();

  for (const item of ordered) {
    if (item.kind !== 'path') {
      out.put(encodeHeader({ name: item.path, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: markerTime }));
      yield* out.take();
      continue;
    }
    const st = stats.get(item.path)!;
    const host = posix.join(root, item.path);
    let type = typeOf(st);
    if (type === 'socket') {
      options.onWarning?.(`Skipped socket "${item.path}": tar cannot hold sockets`);
      continue;
    }
    const attrs = xattrs.get(host) ?? new Map<string, Buffer>();
    let uid = st.uid;
    let gid = st.gid;
    let mode = st.mode & 0o7777;
    let devmajor = type === 'char' || type === 'block' ? major(st.rdev) : 0;
    let devminor = type === 'char' || type === 'block' ? minor(st.rdev) : 0;
    if (options.useOverrideStat) {
      const o = attrs.has(OVERRIDE_STAT_XATTR) ? parseOverrideStat(attrs.get(OVERRIDE_STAT_XATTR)!) : undefined;
      uid = o?.uid ?? 0;
      gid = o?.gid ?? 0;
      if (o) mode = o.mode;
      if (o && (o.type === 'char' || o.type === 'block') && type === 'file') {
        type = o.type;
        devmajor = o.devmajor ?? 0;
        devminor = o.devminor ?? 0;
      }
    }
    const h: EncodeHeader = {
      name: type === 'dir' ? `${item.path}/` : item.path,
      type,
      mode,
      uid,
      gid,
      size: 0,
      mtime: clamp(Math.floor(st.mtimeMs / 1000)),
      devmajor,
      devminor,
      xattrs: [...attrs].filter(([k]) => keepXattr(k)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    };
    if (type === 'symlink') h.linkname = readlinkSync(host);
    if (type === 'file' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = firstPathOfInode.get(key);
      if (first !== undefined) {
        h.type = 'link';
        h.linkname = first;
        delete h.xattrs; // the inode's xattrs travel with the first path
        out.put(encodeHeader(h));
        yield* out.take();
        continue;
      }
      firstPathOfInode.set(key, item.path);
    }
    if (type !== 'file') {
      out.put(encodeHeader(h));
      yield* out.take();
      continue;
    }
    h.size = st.size;
    out.put(encodeHeader(h));
    yield* out.take();
    yield* copyFile(host, st, out);
  }
  out.put(END_OF_ARCHIVE);
  yield* out.take();
  const rest = out.rest();
  if (rest.length > 0) yield rest;
}

/**
 * Files up to this size are read with synchronous calls: awaited, each read was a thread-pool
 * round trip, and for a 20,000-file layer those round trips, not the bytes, were the cost.
 * Bigger files are read asynchronously so a slow disk does not stall the event loop. Opening,
 * checking and closing are synchronous for every file (metadata calls, microseconds each).
 */
const SYNC_READ_MAX = 128 * 1024;

function sourceChanged(host: string, how: string): KilnError {
  return new KilnError('LAYER_SOURCE_CHANGED', `Cannot write layer: "${host}" ${how} while the layer was being written`);
}

function readAsync(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

async function* copyFile(host: string, st: Stats, out: ChunkWriter): AsyncGenerator<Buffer> {
  const fd = openSync(host, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    const now = fstatSync(fd);
    if (!now.isFile() || now.ino !== st.ino || now.size !== st.size) throw sourceChanged(host, 'changed');
    const inline = st.size <= SYNC_READ_MAX;
    let left = st.size;
    let pos = 0;
    while (left > 0) {
      const { buf, off, len } = out.space();
      const want = Math.min(left, len);
      const bytesRead = inline ? readSync(fd, buf, off, want, pos) : await readAsync(fd, buf, off, want, pos);
      if (bytesRead === 0) throw sourceChanged(host, 'shrank');
      out.advance(bytesRead);
      left -= bytesRead;
      pos += bytesRead;
      yield* out.take();
    }
    out.zeros(padding(st.size));
    yield* out.take();
  } finally {
    closeSync(fd);
  }
}
