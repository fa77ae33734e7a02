import { spawn, type ChildProcess } from 'node:child_process';
import { HostError } from '../errors.js';
import { which } from '../util/which.js';

/**
 * A kernel file lock (flock(2)) held by a small `flock(1)` child for as long
 * as kiln needs it: released by release(), or by the kernel when kiln dies
 * (the child's stdin closes). Used for cache mounts, which may be held for as
 * long as a RUN step lasts.
 */
export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Take `mode` lock on `file`. wait=false: resolves undefined when the lock is
 * busy. wait=true: waits (abortable with signal).
 */
export async function lockFile(file: string, mode: 'shared' | 'exclusive', opts: { wait: boolean; signal?: AbortSignal }): Promise<HeldLock | undefined> {
  const flock = which('flock');
  if (!flock) throw new HostError('Cannot lock cache mounts: util-linux "flock" is not installed', { code: 'HOST_NO_FLOCK', hint: 'apt-get install util-linux' });
  const args = [mode === 'shared' ? '-s' : '-x', ...(opts.wait ? [] : ['-n']), '-E', '75', file, '-c', 'echo locked; exec cat >/dev/null'];
  const child = spawn(flock, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    let settled = false;
    const onAbort = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (!settled && out.includes('locked')) {
        settled = true;
        opts.signal?.removeEventListener('abort', onAbort);
        resolve(holder(child));
      }
    });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => {
      if (!settled) reject(e);
      settled = true;
    });
    child.on('exit', (code) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.signal?.aborted) reject(opts.signal.reason);
      else if (code === 75) resolve(undefined);
      else reject(new HostError(`Cannot lock "${file}": ${err.trim() || `flock exited with ${code}`}`, { code: 'LOCK_FAILED' }));
    });
  });
}

function holder(child: ChildProcess): HeldLock {
  let done: Promise<void> | undefined;
  return {
    release() {
      done ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin!.end();
      });
      return done;
    },
  };
}
