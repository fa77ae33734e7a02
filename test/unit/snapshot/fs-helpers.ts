import { release } from 'node:os';
/**
 * Test helpers for the snapshotter suites: describe a tree (type, mode, owner, size, content
 * hash, link target, device numbers, xattrs), replay a change list onto a copy of the parent
 * (an independent reference for what a layer built from the changes would produce), and run
 * tools with a timeout.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lchown, lstat, mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Change } from '../../../src/layer/types.js';

const execFileP = promisify(execFile);

export async function sh(argv: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await execFileP(argv[0]!, argv.slice(1), { cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, killSignal: 'SIGKILL' });
  return stdout;
}

const isOverlayPrivate = (name: string) => /^(trusted|user)\.overlay\./.test(name);

/** path → (xattr name → hex value) for every path under `dir` that has xattrs (overlay-private ones left out). */
export async function xattrsOf(dir: string): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  const text = await sh(['getfattr', '-R', '-h', '--absolute-names', '--physical', '-e', 'hex', '-d', '-m', '-', dir]);
  let cur: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = new Map();
      const p = line.slice(8);
      out.set(p === dir ? '' : p.slice(dir.length + 1), cur);
    } else if (cur && line.includes('=')) {
      const [name, value] = [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)];
      if (!isOverlayPrivate(name) && !name.startsWith('security.selinux')) cur.set(name, value);
    }
  }
  for (const [k, v] of out) if (!v.size) out.delete(k);
  return out;
}

/**
 * One line per path under `dir` (root excluded): type, mode, uid:gid, and size + sha256 for
 * files, target for symlinks, rdev for devices, mtime for non-directories, sorted xattrs.
 * Directory mtimes and link counts are left out (replaying changes cannot preserve them).
 */
export async function describeTree(dir: string): Promise<Record<string, string>> {
  const xattrs = await xattrsOf(dir);
  const out: Record<string, string> = {};
  const visit = async (rel: string): Promise<void> => {
    for (const name of (await readdir(rel ? join(dir, rel) : dir)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(dir, r);
      const st = await lstat(p, { bigint: true });
      let line = `${(st.mode & 0o7777n).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isDirectory()) line = `dir ${line}`;
      else if (st.isFile()) line = `file ${line} ${st.size} ${createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 16)} m${st.mtimeNs}`;
      else if (st.isSymbolicLink()) line = `symlink ${line} -> ${await readlink(p)} m${st.mtimeNs}`;
      else if (st.isCharacterDevice() || st.isBlockDevice()) line = `dev ${line} ${st.rdev}`;
      else line = `other ${line}`;
      const x = xattrs.get(r);
      if (x) line += ` xattrs{${[...x].sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
      out[r] = line;
      if (st.isDirectory()) await visit(r);
    }
  };
  await visit('');
  return out;
}

async function copyDirAttrs(src: string, dst: string): Promise<void> {
  const st = await lstat(src);
  await lchown(dst, st.uid, st.gid);
  await chmod(dst, st.mode & 0o7777);
  const text = await sh(['getfattr', '--absolute-names', '-e', 'hex', '-d', '-m', '-', src]);
  for (const line of text.split('\n')) {
    if (!line.includes('=') || line.startsWith('#')) continue;
    const name = line.slice(0, line.indexOf('='));
    if (isOverlayPrivate(name)) continue;
    await sh(['setfattr', '-h', '-n', name, '-v', line.slice(line.indexOf('=') + 1), dst]);
  }
}

/**
 * What a layer made of `changes` (read from `root`) does when applied on a copy of `parent`:
 * written to `out` (must not exist). Deletes remove the path; opaque dirs drop their old
 * content; other changes copy the path itself (a directory's attributes, not its content).
 */
export async function replay(parent: string, root: string, changes: Change[], out: string): Promise<void> {
  await sh(['cp', '-a', parent, out]);
  for (const c of [...changes].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const target = join(out, c.path);
    if (c.kind === 'delete') {
      await rm(target, { recursive: true, force: true });
      continue;
    }
    const src = join(root, c.path);
    const st = await lstat(src);
    const existing = await lstat(target).catch(() => undefined);
    if (st.isDirectory()) {
      if (c.opaque || (existing && !existing.isDirectory())) await rm(target, { recursive: true, force: true });
      await mkdir(target, { recursive: true });
      await copyDirAttrs(src, target);
    } else {
      if (existing) await rm(target, { recursive: true, force: true });
      await sh(['cp', '-a', '--no-dereference', src, target]);
    }
  }
}

/** Every path in `changes`, checked against the paths a step touched: each change must be one of them or an ancestor. */
export function unexpectedChanges(changes: Change[], touched: string[]): string[] {
  const allowed = new Set<string>();
  for (const t of touched) {
    const parts = t.split('/');
    for (let i = 1; i <= parts.length; i++) allowed.add(parts.slice(0, i).join('/'));
  }
  return changes.filter((c) => !allowed.has(c.path) && !touched.some((t) => c.path.startsWith(`${t}/`))).map((c) => `${c.kind} ${c.path}`);
}

/** Mount points at or below `dir` in this process's mount namespace. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Overlay's `volatile` mount option exists from Linux 5.10. */
export function kernelHasVolatile(): boolean {
  const [major = 0, minor = 0] = release().split('.').map(Number);
  return major > 5 || (major === 5 && minor >= 10);
}
