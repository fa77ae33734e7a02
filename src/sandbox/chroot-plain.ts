import { execFile } from 'node:child_process';
import { chmod, chown, copyFile, lstat, mkdir, readdir, readFile, rm, rmdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';
import { promisify } from 'node:util';
import { HostError } from '../errors.js';
import { resolveInRoot } from '../util/safe-path.js';
import { envObject, prepareCwd } from './prepare-run.js';
import { hostsFile, resolvConfFile } from './runtime-files.js';
import { envFix, HELPER_DIR, helperArgv, setgroupsAllowed, splitHostEnv, type Helper } from './setpriv-helper.js';
import { spawnSandbox } from './spawn-sandbox.js';
import type { RunRequest } from './types.js';
import { homeOf } from './user.js';

const execFileP = promisify(execFile);

/** Device nodes a step gets when kiln may create them (major, minor). */
const DEVICES: [string, number, number][] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

interface Undo {
  /** Restored (or removed) after the step, last first. A 'scratch-dir' goes with all it holds. */
  kind: 'created-file' | 'created-dir' | 'scratch-dir' | 'replaced-file';
  path: string;
  saved?: { content: Buffer; mode: number; uid: number; gid: number; atime: Date; mtime: Date };
}

/**
 * chroot without any namespace, for a container that allows kiln neither a
 * user nor a mount namespace (docker's default: no CAP_SYS_ADMIN) but lets
 * root chroot. Nothing can be mounted, so kiln writes what it would have
 * mounted into the rootfs and puts everything back after the step: /etc/hosts,
 * /etc/resolv.conf and file mounts (originals restored), device nodes in /dev
 * (when mknod is allowed) and the setpriv helper in /dev/.kiln (removed). The
 * step sees no /proc, shares the container's network, hostname and processes,
 * and RUN --mount bind/cache/tmpfs and --network=none are refused.
 */
export async function runChrootWithoutNamespaces(chroot: string, helper: Helper, req: RunRequest, opts: { signal?: AbortSignal }): Promise<void> {
  if (req.network === 'none') {
    throw new HostError('Cannot run with --network=none: kiln may create no namespace in this container', {
      code: 'HOST_NO_NET_NS',
      hint: 'Use --network=host for this step, or give the container CAP_SYS_ADMIN.',
    });
  }
  const mounted = req.mounts.find((m) => m.type !== 'file');
  if (mounted) {
    throw new HostError(`Cannot mount "${mounted.target}" for this step: kiln may create no mount namespace in this container`, {
      code: 'HOST_NO_MOUNT_NS',
      hint: 'RUN --mount=type=bind|cache|tmpfs needs a mount namespace: give the container CAP_SYS_ADMIN (docker run --cap-add SYS_ADMIN) or allow user namespaces.',
    });
  }
  const rootfs = posix.resolve(req.rootfs);
  const undo: Undo[] = [];
  const touched = new Map<string, { atime: Date; mtime: Date }>();
  try {
    const cwd = await prepareCwd(rootfs, req.cwd);
    const files = [...req.mounts.filter((m) => m.type === 'file')];
    const targets = new Set(files.map((m) => posix.normalize('/' + m.target)));
    const hostname = req.hostname ?? 'buildkitsandbox';
    if (!targets.has('/etc/hosts')) files.push({ type: 'file', target: '/etc/hosts', content: hostsFile(hostname) });
    if (!targets.has('/etc/resolv.conf')) files.push({ type: 'file', target: '/etc/resolv.conf', content: resolvConfFile() });
    for (const f of files) await putFile(rootfs, f.target, f.content, f.mode ?? 0o644, f.uid ?? 0, f.gid ?? 0, undo, touched);

    // What a step writes in /dev never reaches a layer (docker mounts /dev): a /dev kiln creates goes with its content.
    const devExisted = Boolean(await lstat(join(rootfs, 'dev')).catch(() => undefined));
    const dev = await ensureDir(rootfs, '/dev', undo, touched);
    if (!devExisted) undo[undo.length - 1]!.kind = 'scratch-dir';
    for (const [name, major, minor] of DEVICES) {
      const p = join(dev, name);
      if (await lstat(p).catch(() => undefined)) continue;
      try {
        await execFileP('mknod', ['-m', '666', p, 'c', String(major), String(minor)], { env: { PATH: '/usr/bin:/bin' } });
        undo.push({ kind: 'created-file', path: p });
      } catch {
        // mknod refused (e.g. in a user namespace): the step runs without this device
      }
    }
    if (await lstat(join(dev, posix.basename(HELPER_DIR))).catch(() => undefined)) {
      throw new HostError(`Cannot run this step: the rootfs already has "${HELPER_DIR}"`, { code: 'ROOTFS_INVALID' });
    }
    const helperDir = await ensureDir(rootfs, HELPER_DIR, undo, touched);
    undo[undo.length - 1]!.kind = 'scratch-dir';
    for (const f of helper.files) {
      const p = join(helperDir, f.name);
      await copyFile(f.source, p);
      await chmod(p, 0o755);
      undo.push({ kind: 'created-file', path: p });
    }

    const env = envObject(req.env);
    if (!('HOME' in env)) env.HOME = await homeOf(rootfs, req.user.uid);
    const { shellEnv, held } = splitHostEnv(env);
    const fix = ['-C', cwd, ...envFix(env, held)];
    const o: Parameters<typeof spawnSandbox>[2] = { argv: req.args, env: shellEnv };
    if (req.display !== undefined) o.display = req.display;
    if (req.onOutput) o.onOutput = req.onOutput;
    if (opts.signal) {
      o.signal = opts.signal;
      // No pid namespace: the step's processes are killed by process group (a step that calls setsid escapes it).
      o.kill = (child) => void (child.pid && process.kill(-child.pid, 'SIGKILL'));
    }
    await spawnSandbox(chroot, [rootfs, ...helperArgv(helper, req.user, req.args, { canSetgroups: setgroupsAllowed(), envFix: fix })], o);
  } finally {
    await restore(rootfs, undo, touched);
  }
}

async function ensureDir(rootfs: string, target: string, undo: Undo[], touched: Map<string, { atime: Date; mtime: Date }>): Promise<string> {
  const host = await resolveInRoot(rootfs, target);
  const parts = relative(rootfs, host).split('/').filter(Boolean);
  let cur = rootfs;
  for (const part of parts) {
    const next = join(cur, part);
    const st = await lstat(next).catch(() => undefined);
    if (!st) {
      if (!touched.has(cur)) {
        const pst = await stat(cur);
        touched.set(cur, { atime: pst.atime, mtime: pst.mtime });
      }
      await mkdir(next, { mode: 0o755 });
      undo.push({ kind: 'created-dir', path: next });
    } else if (!st.isDirectory()) {
      throw new HostError(`Cannot prepare "${target}" in the rootfs: "${'/' + relative(rootfs, next)}" is not a directory`, { code: 'MOUNT_TARGET' });
    }
    cur = next;
  }
  return cur;
}

async function putFile(rootfs: string, target: string, content: Buffer, mode: number, uid: number, gid: number, undo: Undo[], touched: Map<string, { atime: Date; mtime: Date }>): Promise<void> {
  const host = await resolveInRoot(rootfs, posix.normalize('/' + target));
  const parent = await ensureDir(rootfs, '/' + relative(rootfs, posix.dirname(host)), undo, touched);
  const p = join(parent, posix.basename(host));
  const st = await lstat(p).catch(() => undefined);
  if (st && !st.isFile()) throw new HostError(`Cannot write "${target}" for this step: it is not a regular file in the rootfs`, { code: 'MOUNT_TARGET' });
  if (st) {
    undo.push({ kind: 'replaced-file', path: p, saved: { content: await readFile(p), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, atime: st.atime, mtime: st.mtime } });
  } else {
    if (!touched.has(parent)) {
      const pst = await stat(parent);
      touched.set(parent, { atime: pst.atime, mtime: pst.mtime });
    }
    undo.push({ kind: 'created-file', path: p });
  }
  await writeFile(p, content);
  await chown(p, uid, gid);
  await chmod(p, mode);
}

/** Put the rootfs back; paths the step moved (a parent swapped for a symlink) are left alone. */
async function restore(rootfs: string, undo: Undo[], touched: Map<string, { atime: Date; mtime: Date }>): Promise<void> {
  const unmoved = async (p: string) => (await resolveInRoot(rootfs, '/' + relative(rootfs, p), false).catch(() => undefined)) === p;
  for (const u of [...undo].reverse()) {
    try {
      if (!(await unmoved(u.path))) continue;
      if (u.kind === 'created-file') await unlink(u.path);
      else if (u.kind === 'scratch-dir') await rm(u.path, { recursive: true, force: true });
      else if (u.kind === 'created-dir') {
        if ((await readdir(u.path)).length === 0) await rmdir(u.path);
      } else if (u.saved) {
        const st = await lstat(u.path).catch(() => undefined);
        if (st && !st.isFile()) await rm(u.path, { recursive: true, force: true });
        await writeFile(u.path, u.saved.content);
        await chown(u.path, u.saved.uid, u.saved.gid);
        await chmod(u.path, u.saved.mode);
        await utimes(u.path, u.saved.atime, u.saved.mtime);
      }
    } catch {
      // gone already
    }
  }
  for (const [dir, t] of touched) {
    if (await unmoved(dir)) await utimes(dir, t.atime, t.mtime).catch(() => undefined);
  }
}
