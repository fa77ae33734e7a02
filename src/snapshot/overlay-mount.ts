import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { HostError, KilnError } from '../errors.js';
import { runTool } from './run-tool.js';

/**
 * Overlay mounts through the `mount` binary. Every mount uses `userxattr` (overlay's private
 * xattrs live in user.overlay.*, which works as real root and inside a user namespace alike, so
 * extracted layers are valid in both), `redirect_dir=nofollow` and `metacopy=off` (the upper
 * dir then always holds whole files: it *is* the diff) and `index=off`.
 *
 * Paths in the options are relative to `cwd` (the snapshotter's root), which keeps long lower
 * chains inside the kernel's one-page limit on mount data.
 *
 * Writable mounts add `volatile` where the kernel has it (≥ 5.10): unmounting then does not
 * sync the whole upper filesystem. Without it the first umount after extracting a base image
 * waited for every dirty page of that filesystem (0.4 s after a 184 MB layer). Snapshots are a
 * cache: kiln syncs blobs and tags, never extracted trees (layer apply did not sync either), so
 * a power loss can leave a snapshot incomplete; deleting `$KILN_ROOT/snapshots` drops them all
 * and they are rebuilt from the blobs. The kernel still writes them back as usual.
 */
export const OVERLAY_FEATURES = 'userxattr,redirect_dir=nofollow,metacopy=off,index=off';
/** The kernel copies at most one page of mount data, NUL included. */
export const MOUNT_DATA_MAX = 4095;

export interface OverlayMountSpec {
  /** Directory the relative paths below are resolved from. */
  cwd: string;
  /** Lower dirs, topmost first; no ':' or ',' in them. */
  lowers: string[];
  /** Upper and work dir; both absent for a read-only mount (then ≥ 2 lowers). */
  upper?: string;
  work?: string;
  /** Absolute mount point. */
  target: string;
}

/** Whether writable mounts take `volatile`: undefined until a mount (or the cached probe) tells. */
let volatileUpper: boolean | undefined;

/** What the overlay probe learnt (remembered across processes with it). */
export function setOverlayVolatile(ok: boolean): void {
  volatileUpper = ok;
}

export function overlayVolatile(): boolean | undefined {
  return volatileUpper;
}

export function overlayOptions(spec: Omit<OverlayMountSpec, 'target' | 'cwd'>, options: { volatile?: boolean } = {}): string {
  for (const p of [...spec.lowers, spec.upper ?? '', spec.work ?? '']) {
    if (/[,:\\]/.test(p)) throw new KilnError('SNAPSHOT_BAD_PATH', `Cannot mount overlay: path "${p}" contains ',', ':' or '\\'`);
  }
  let opts = `lowerdir=${spec.lowers.join(':')}`;
  if (spec.upper) opts += `,upperdir=${spec.upper},workdir=${spec.work}${options.volatile ? ',volatile' : ''}`;
  return `${opts},${OVERLAY_FEATURES}`;
}

const live = new Set<string>();
let exitHookInstalled = false;

/**
 * Lazily unmount every overlay this process mounted and has not released. Runs by itself on
 * process 'exit'; signal handlers (SIGINT/SIGTERM, which skip 'exit' unless they call
 * process.exit) should call it. A SIGKILLed process leaves its mounts: the next snapshotter
 * opened on the same root removes them (its active snapshots have a dead owner).
 */
export function unmountAllSync(): void {
  for (const target of live) spawnSync('umount', ['-l', target], { stdio: 'ignore', timeout: 5000 });
  live.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', unmountAllSync);
}

export async function mountOverlay(spec: OverlayMountSpec): Promise<void> {
  const tryVolatile = spec.upper !== undefined && volatileUpper !== false;
  const opts = overlayOptions(spec, { volatile: tryVolatile });
  if (opts.length > MOUNT_DATA_MAX) {
    throw new KilnError('SNAPSHOT_CHAIN_TOO_LONG', `Cannot mount overlay on "${spec.target}": ${opts.length} bytes of options exceed one page`);
  }
  installExitHook();
  const mount = (o: string) => runTool(['mount', '-t', 'overlay', 'overlay', '-o', o, spec.target], { cwd: spec.cwd, timeoutMs: 30_000 });
  try {
    try {
      await mount(opts);
      if (tryVolatile) volatileUpper = true;
    } catch (err) {
      if (!tryVolatile) throw err;
      // A kernel without `volatile` (< 5.10) refuses it: mount as before and stop asking.
      await mount(overlayOptions(spec));
      volatileUpper = false;
    }
  } catch (err) {
    throw new HostError(`Cannot mount overlay on "${spec.target}"`, {
      code: 'OVERLAY_MOUNT_FAILED',
      cause: err,
      hint: 'Run kiln as root or in a user+mount namespace (kernel ≥ 5.11 for userxattr), or use the copy snapshotter.',
    });
  }
  live.add(spec.target);
}

/** Unmount `target` if it is mounted: plain umount, lazy (-l) when busy. Idempotent. */
export async function unmount(target: string): Promise<void> {
  try {
    await runTool(['umount', target], { timeoutMs: 30_000 });
  } catch {
    if (await isMounted(target)) {
      try {
        await runTool(['umount', '-l', target], { timeoutMs: 30_000 });
      } catch (err) {
        if (await isMounted(target)) throw new KilnError('SNAPSHOT_UMOUNT_FAILED', `Cannot unmount "${target}"`, { cause: err });
      }
    }
  }
  live.delete(target);
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points of this process's mount namespace (from /proc/self/mountinfo). */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => unescapeMountinfo(line.split(' ')[4] ?? ''));
}

export async function isMounted(target: string): Promise<boolean> {
  return (await mountPoints()).includes(target);
}
