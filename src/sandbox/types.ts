/**
 * Contract of executors (owner: src/sandbox/). An executor runs one process
 * over a prepared rootfs; ProcessError when it exits non-zero.
 */
export type MountSpec =
  | { type: 'bind'; source: string; target: string; readonly: boolean }
  | { type: 'tmpfs'; target: string; sizeBytes?: number }
  /** A file created inside the sandbox with this content (hosts, resolv.conf, secrets on tmpfs). */
  | { type: 'file'; target: string; content: Buffer; mode?: number };

export interface RunUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

export interface RunRequest {
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  user: RunUser;
  network: 'host' | 'none';
  mounts: MountSpec[];
  hostname?: string;
  /** Receives output chunks as they come (the caller prints or buffers them). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** Shown in ProcessError instead of argv (e.g. `/bin/sh -c make`). */
  display?: string;
}

export interface Executor {
  readonly name: 'bwrap' | 'runc' | 'chroot';
  run(req: RunRequest, opts: { signal?: AbortSignal }): Promise<void>;
}

export type Isolation = 'auto' | 'bwrap' | 'runc' | 'chroot';
