import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rm, rmdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { KilnError } from '../errors.js';
import { isInside, resolveInRoot } from '../util/safe-path.js';
import { hostsFile, resolvConfFile } from './runtime-files.js';
import { homeOf } from './user.js';
import type { MountSpec, RunRequest } from './types.js';

/** A mount with its target resolved inside the rootfs (absolute, symlink-free sandbox path). */
export type PreparedMount =
  | { kind: 'bind'; source: string; dest: string; readonly: boolean }
  | { kind: 'tmpfs'; dest: string; sizeBytes?: number };

export interface PreparedRun {
  rootfs: string;
  /** In mount order: parents before children. */
  mounts: PreparedMount[];
  /** Absolute, symlink-free path inside the sandbox. */
  cwd: string;
  env: Record<string, string>;
  hostname: string;
  /** Private directory (0700, on tmpfs when /dev/shm exists) for this run's files. */
  tempDir: string;
  /** Remove placeholders and temp files. Idempotent; call after every process of the run is gone. */
  cleanup(): Promise<void>;
}

interface Placeholder {
  path: string;
  kind: 'dir' | 'file';
}

/** Paths where a working directory would land on a kernel filesystem mounted in the sandbox. */
const PSEUDO_FS = ['/proc', '/sys', '/dev'];

/**
 * Everything executors share before starting the process: resolve mount
 * targets and cwd inside the rootfs, create missing mountpoints as
 * placeholders (removed by cleanup, so they never reach a layer), write file
 * mounts to a private tmpfs directory, and add /etc/hosts and /etc/resolv.conf.
 */
export async function prepareRun(req: RunRequest, extraDirs: string[] = ['/proc', '/dev']): Promise<PreparedRun> {
  const rootfs = posix.resolve(req.rootfs);
  const st = await stat(rootfs).catch(() => undefined);
  if (!st?.isDirectory()) throw new KilnError('ROOTFS_MISSING', `Cannot run "${display(req)}": rootfs "${req.rootfs}" is not a directory`);

  const placeholders: Placeholder[] = [];
  const touchedDirs = new Map<string, { atime: Date; mtime: Date }>();
  const base = privateTmpBase();
  swept ??= sweepStaleRunDirs(base);
  await swept;
  const tempDir = await mkdtemp(join(base, `kiln-run-${process.pid}-`));
  await chmod(tempDir, 0o700);
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await removePlaceholders(rootfs, placeholders, touchedDirs);
    await rm(tempDir, { recursive: true, force: true });
  };

  try {
    const hostname = req.hostname ?? 'buildkitsandbox';
    const specs: MountSpec[] = [...req.mounts];
    const targets = new Set(specs.map((m) => posix.normalize('/' + m.target)));
    if (!targets.has('/etc/hosts')) specs.push({ type: 'file', target: '/etc/hosts', content: hostsFile(hostname) });
    if (!targets.has('/etc/resolv.conf')) specs.push({ type: 'file', target: '/etc/resolv.conf', content: resolvConfFile() });

    // First, so that a working directory at or below a mount target is a real (kept) directory, as WORKDIR makes it.
    const cwd = await prepareCwd(rootfs, req.cwd);
    for (const d of extraDirs) {
      const lst = await lstat(join(rootfs, d)).catch(() => undefined);
      if (lst && !lst.isDirectory()) {
        throw new KilnError('ROOTFS_INVALID', `Cannot run "${display(req)}": "${d}" in the rootfs is not a directory`, {
          hint: `The image replaced ${d} with a file or symlink; kiln mounts the sandbox's own ${d} there.`,
        });
      }
      await ensureMountpoint(rootfs, d, 'dir', placeholders, touchedDirs);
    }

    const mounts: PreparedMount[] = [];
    let n = 0;
    for (const spec of specs) {
      if (spec.type === 'file') {
        const src = join(tempDir, `f${n++}`);
        await writeFile(src, spec.content, { mode: 0o600 });
        await chown(src, spec.uid ?? 0, spec.gid ?? 0);
        await chmod(src, spec.mode ?? 0o644);
        const dest = await ensureMountpoint(rootfs, spec.target, 'file', placeholders, touchedDirs);
        mounts.push({ kind: 'bind', source: src, dest, readonly: true });
      } else if (spec.type === 'tmpfs') {
        const dest = await ensureMountpoint(rootfs, spec.target, 'dir', placeholders, touchedDirs);
        mounts.push(spec.sizeBytes === undefined ? { kind: 'tmpfs', dest } : { kind: 'tmpfs', dest, sizeBytes: spec.sizeBytes });
      } else {
        const sst = await stat(spec.source).catch((err: Error) => {
          throw new KilnError('MOUNT_SOURCE', `Cannot mount "${spec.source}" at "${spec.target}": ${err.message}`, { cause: err });
        });
        const dest = await ensureMountpoint(rootfs, spec.target, sst.isDirectory() ? 'dir' : 'file', placeholders, touchedDirs);
        mounts.push({ kind: 'bind', source: spec.source, dest, readonly: spec.readonly });
      }
    }
    mounts.sort((a, b) => depth(a.dest) - depth(b.dest));

    const env = envObject(req.env);
    // As runc (and so docker build): HOME from /etc/passwd when the step has none.
    if (!('HOME' in env)) env.HOME = await homeOf(rootfs, req.user.uid);
    return { rootfs, mounts, cwd, env, hostname, tempDir, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function display(req: RunRequest): string {
  return req.display ?? req.args.join(' ');
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}

/** Last assignment wins; entries without "=" are kept with an empty value (as docker). */
export function envObject(env: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of env) {
    const eq = kv.indexOf('=');
    if (eq === 0) continue;
    if (eq === -1) out[kv] = '';
    else out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

let swept: Promise<void> | undefined;

/**
 * Remove run directories (file mounts, secrets) of kiln processes that died
 * without cleaning up (SIGKILL, crash), so a secret does not stay on tmpfs.
 * Only directories of this user whose pid is gone are removed.
 */
async function sweepStaleRunDirs(base: string): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(base);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^kiln-run-(\d+)-/.exec(n);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    const p = join(base, n);
    const st = await lstat(p).catch(() => undefined);
    if (st?.isDirectory() && st.uid === process.getuid?.()) await rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
}

function privateTmpBase(): string {
  try {
    if (statSync('/dev/shm').isDirectory() && existsSync('/proc/self/mounts')) {
      const shm = readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === '/dev/shm' && l.split(' ')[2] === 'tmpfs');
      if (shm) return '/dev/shm';
    }
  } catch {
    // fall through
  }
  return tmpdir();
}

export async function prepareCwd(rootfs: string, cwd: string): Promise<string> {
  const wanted = posix.normalize('/' + (cwd || '/'));
  const host = await resolveInRoot(rootfs, wanted);
  if (!isInside(rootfs, host)) {
    throw new KilnError('WORKDIR_ESCAPE', `Cannot use working directory "${cwd}": it resolves outside the rootfs`);
  }
  const inside = '/' + relative(rootfs, host);
  for (const p of PSEUDO_FS) {
    if (inside === p || inside.startsWith(p + '/')) {
      throw new KilnError('WORKDIR_ESCAPE', `Cannot use working directory "${cwd}": it resolves to "${inside}", inside the sandbox's ${p} where it could lead outside the rootfs`, {
        hint: 'Use a WORKDIR in the image filesystem.',
      });
    }
  }
  const st = await lstat(host).catch(() => undefined);
  if (st && !st.isDirectory()) throw new KilnError('WORKDIR_NOT_DIR', `Cannot use working directory "${cwd}": "${inside}" is not a directory`);
  if (!st) await mkdir(host, { recursive: true, mode: 0o755 });
  return inside;
}

/**
 * Make sure `target` exists inside the rootfs as a dir or file to mount on;
 * returns the resolved sandbox path. Missing components are created and
 * recorded; the parent directories' times are recorded to be restored.
 */
async function ensureMountpoint(
  rootfs: string,
  target: string,
  kind: 'dir' | 'file',
  placeholders: Placeholder[],
  touched: Map<string, { atime: Date; mtime: Date }>,
): Promise<string> {
  const host = await resolveInRoot(rootfs, posix.normalize('/' + target));
  const inside = '/' + relative(rootfs, host);
  if (inside === '/') {
    if (kind === 'file') throw new KilnError('MOUNT_TARGET', `Cannot mount a file at "${target}": it is the root directory`);
    return '/';
  }
  const parts = inside.split('/').filter(Boolean);
  let cur = rootfs;
  for (let i = 0; i < parts.length; i++) {
    const next = join(cur, parts[i]!);
    const last = i === parts.length - 1;
    const st = await lstat(next).catch(() => undefined);
    if (st) {
      if (!last && !st.isDirectory()) throw new KilnError('MOUNT_TARGET', `Cannot mount at "${target}": "${'/' + relative(rootfs, next)}" is not a directory`);
      if (last && kind === 'dir' && !st.isDirectory()) throw new KilnError('MOUNT_TARGET', `Cannot mount a directory at "${target}": it is a file in the rootfs`);
      if (last && kind === 'file' && st.isDirectory()) throw new KilnError('MOUNT_TARGET', `Cannot mount a file at "${target}": it is a directory in the rootfs`);
      cur = next;
      continue;
    }
    if (!touched.has(cur)) {
      const pst = await stat(cur);
      touched.set(cur, { atime: pst.atime, mtime: pst.mtime });
    }
    if (last && kind === 'file') {
      await writeFile(next, '', { flag: 'wx', mode: 0o644 });
      placeholders.push({ path: next, kind: 'file' });
    } else {
      await mkdir(next, { mode: 0o755 });
      placeholders.push({ path: next, kind: 'dir' });
    }
    cur = next;
  }
  return inside;
}

/**
 * Remove what ensureMountpoint created. The step may have replaced a
 * placeholder's parent with a symlink (BuildKit CVE-2024-23652: its stub
 * cleaner then deleted host files), so every path is re-resolved inside the
 * rootfs without following the final component and skipped when it moved.
 */
async function removePlaceholders(rootfs: string, placeholders: Placeholder[], touched: Map<string, { atime: Date; mtime: Date }>): Promise<void> {
  const unmoved = async (p: string) => (await resolveInRoot(rootfs, '/' + relative(rootfs, p), false).catch(() => undefined)) === p;
  for (const p of [...placeholders].reverse()) {
    try {
      if (!(await unmoved(p.path))) continue;
      if (p.kind === 'file') {
        const st = await lstat(p.path);
        if (st.isFile() && st.size === 0) await unlink(p.path);
      } else if ((await readdir(p.path)).length === 0) {
        await rmdir(p.path);
      }
    } catch {
      // already gone, or the step put something there: keep it
    }
  }
  for (const [dir, t] of touched) {
    if (!(await unmoved(dir))) continue;
    const st = await lstat(dir).catch(() => undefined);
    if (st?.isDirectory()) await utimes(dir, t.atime, t.mtime).catch(() => undefined);
  }
}
