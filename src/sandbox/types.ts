/**
 * Contract of executors (owner: src/sandbox/). An executor runs one process
 * over a prepared rootfs; ProcessError when it exits non-zero.
 *
 * Mount targets are paths inside the rootfs; they are resolved inside it
 * (symlinks cannot lead a mount out of the rootfs). A mountpoint that does not
 * exist in the rootfs is created for the run and removed afterwards, so it never
 * shows up in the layer diff. /etc/hosts and /etc/resolv.conf are supplied by the
 * executor unless `mounts` already has them.
 */
export type MountSpec =
  | { type: 'bind'; source: string; target: string; readonly: boolean }
  | { type: 'tmpfs'; target: string; sizeBytes?: number }
  /**
   * A file created inside the sandbox with this content (hosts, resolv.conf, secrets on tmpfs).
   * Mounted read-only; the content lives on a tmpfs outside the rootfs and is deleted after the run.
   * mode defaults to 0o644, uid/gid to 0.
   */
  | { type: 'file'; target: string; content: Buffer; mode?: number; uid?: number; gid?: number };

export interface RunUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

export interface RunRequest {
  rootfs: string;
  args: string[];
  /**
   * The whole environment ("KEY=value"); nothing comes from the host. As with
   * runc/docker, HOME is added from the rootfs's /etc/passwd ("/" if absent)
   * when not set.
   */
  env: string[];
  /** Created (root-owned, 0755) when missing; refused when it resolves outside the rootfs. */
  cwd: string;
  user: RunUser;
  network: 'host' | 'none';
  mounts: MountSpec[];
  /** Default "buildkitsandbox" (as docker build). */
  hostname?: string;
  /** Receives output chunks as they come (the caller prints or buffers them). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** Shown in ProcessError instead of argv (e.g. `/bin/sh -c make`; quoted by the executor, an already JSON-quoted value is kept). */
  display?: string;
}

export interface Executor {
  readonly name: 'bwrap' | 'runc' | 'chroot';
  /** True when RUN is isolated from the host (false for chroot). */
  readonly isolated: boolean;
  /**
   * Run to completion. Rejects with ProcessError on a non-zero exit; with
   * signal.reason when aborted (the whole process tree is killed first). Every
   * mount, placeholder and temp file is gone when the promise settles.
   */
  run(req: RunRequest, opts: { signal?: AbortSignal }): Promise<void>;
}

export type Isolation = 'auto' | 'bwrap' | 'runc' | 'chroot';
