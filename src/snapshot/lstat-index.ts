import type { BigIntStats } from 'node:fs';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Change } from '../layer/types.js';

/**
 * What the copy snapshotter remembers of a tree right after copying it: per path, lstat data
 * (type, mode, owner, size, mtime and ctime in ns, inode) and, for directories, the names in
 * them. ctime catches every metadata or content change (chmod, chown, xattrs, writes, link
 * count), inode numbers catch replaced files and directories, so changes are found without
 * reading the contents of unchanged files.
 */
export interface IndexEntry {
  /** f file, d dir, l symlink, c/b devices, p fifo, s socket */
  t: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: bigint;
  ctime: bigint;
  ino: bigint;
  children?: string[];
}

export type LstatIndex = Map<string, IndexEntry>;

function typeOf(st: BigIntStats): string {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return 's';
}

function entryOf(st: BigIntStats): IndexEntry {
  return { t: typeOf(st), mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: Number(st.size), mtime: st.mtimeNs, ctime: st.ctimeNs, ino: st.ino };
}

const join2 = (rel: string, name: string) => (rel ? `${rel}/${name}` : name);

/** Index every path under `root` (root itself is ""). Also returns the newest ctime seen (ns). */
export async function buildIndex(root: string): Promise<{ index: LstatIndex; maxCtime: bigint }> {
  const index: LstatIndex = new Map();
  let maxCtime = 0n;
  const visit = async (rel: string, st: BigIntStats): Promise<void> => {
    const e = entryOf(st);
    if (e.ctime > maxCtime) maxCtime = e.ctime;
    index.set(rel, e);
    if (e.t !== 'd') return;
    const names = await readdir(rel ? join(root, rel) : root);
    e.children = names;
    await Promise.all(names.map(async (n) => visit(join2(rel, n), await lstat(join(root, rel, n), { bigint: true }))));
  };
  await visit('', await lstat(root, { bigint: true }));
  return { index, maxCtime };
}

function differs(old: IndexEntry, now: IndexEntry): boolean {
  return old.mode !== now.mode || old.uid !== now.uid || old.gid !== now.gid || old.size !== now.size || old.mtime !== now.mtime || old.ctime !== now.ctime || old.ino !== now.ino;
}

/**
 * Changes of the tree at `root` against `index`. Unchanged directories are descended, new or
 * replaced ones are listed whole as 'add' (a directory replaced by another inode is `opaque`),
 * deleted paths are reported once at their topmost path. A directory none of whose old entries
 * survive (same name, type and inode), some of them deleted, is reported `opaque` with its
 * entries listed whole instead of one delete per old entry, which
 * is what `rm -rf d && mkdir d` looks like when the new directory reuses the inode number.
 * Root's own metadata is not a change.
 */
export async function diffIndex(root: string, index: LstatIndex): Promise<Change[]> {
  const out: Change[] = [];
  const addAll = async (rel: string): Promise<void> => {
    const dirents = await readdir(join(root, rel), { withFileTypes: true });
    await Promise.all(
      dirents.map(async (d) => {
        const r = join2(rel, d.name);
        out.push({ kind: 'add', path: r });
        if (d.isDirectory()) await addAll(r);
      }),
    );
  };
  /** Report the entries of directory `rel`; returns 'opaque' (reporting nothing) when all its old entries are gone. */
  const compareDir = async (rel: string, old: IndexEntry): Promise<'opaque' | 'compared'> => {
    const names = await readdir(rel ? join(root, rel) : root);
    const entries = await Promise.all(
      names.map(async (name) => {
        const r = join2(rel, name);
        return { name, r, now: entryOf(await lstat(join(root, r), { bigint: true })), before: index.get(r) };
      }),
    );
    const byName = new Map(entries.map((e) => [e.name, e]));
    const oldNames = old.children ?? [];
    const survives = (n: string) => {
      const e = byName.get(n);
      return e?.before !== undefined && e.before.t === e.now.t && e.before.ino === e.now.ino;
    };
    // Opaque only pays when it replaces deletes: some old entry is gone and none survives.
    if (rel !== '' && oldNames.some((n) => !byName.has(n)) && !oldNames.some(survives)) return 'opaque';
    await Promise.all(
      entries.map(async ({ r, now, before }) => {
        if (!before) {
          out.push({ kind: 'add', path: r });
          if (now.t === 'd') await addAll(r);
        } else if (before.t !== now.t) {
          out.push({ kind: 'modify', path: r });
          if (now.t === 'd') await addAll(r);
        } else if (now.t === 'd' && (before.ino !== now.ino || (await compareDir(r, before)) === 'opaque')) {
          out.push({ kind: 'modify', path: r, opaque: true });
          await addAll(r);
        } else if (differs(before, now)) {
          out.push({ kind: 'modify', path: r });
        }
      }),
    );
    for (const name of oldNames) if (!byName.has(name)) out.push({ kind: 'delete', path: join2(rel, name) });
    return 'compared';
  };
  await compareDir('', index.get('')!);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Compact on-disk form: one JSON array per path. */
export async function saveIndex(file: string, index: LstatIndex): Promise<void> {
  const rows: unknown[] = [];
  for (const [p, e] of index) rows.push([p, e.t, e.mode, e.uid, e.gid, e.size, String(e.mtime), String(e.ctime), String(e.ino), e.children ?? null]);
  await writeFile(file, JSON.stringify(rows));
}

export async function loadIndex(file: string): Promise<LstatIndex> {
  const rows = JSON.parse(await readFile(file, 'utf8')) as [string, string, number, number, number, number, string, string, string, string[] | null][];
  const index: LstatIndex = new Map();
  for (const [p, t, mode, uid, gid, size, mtime, ctime, ino, children] of rows) {
    const e: IndexEntry = { t, mode, uid, gid, size, mtime: BigInt(mtime), ctime: BigInt(ctime), ino: BigInt(ino) };
    if (children) e.children = children;
    index.set(p, e);
  }
  return index;
}
