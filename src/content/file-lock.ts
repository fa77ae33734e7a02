import { open, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { KilnError } from '../errors.js';

/**
 * A cross-process lock made of one file created with O_EXCL. The file holds
 * "pid@host"; a lock whose owner is dead (same host, no such pid) or older than
 * `staleMs` is broken. withFileLock() always removes its own lock file.
 */
export interface FileLockOptions {
  /** Give up after this long (default 30 s): KilnError LOCK_TIMEOUT. */
  timeoutMs?: number;
  /** A lock file older than this is considered abandoned (default 5 min). */
  staleMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ownerAlive(text: string): boolean {
  const [pidText, host] = text.trim().split('@');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || host !== hostname()) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function tryBreak(path: string, staleMs: number): Promise<void> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    // An empty file is a lock being written right now, unless it is old.
    if ((text !== '' && !ownerAlive(text)) || Date.now() - st.mtimeMs > staleMs) await rm(path, { force: true });
  } catch {
    /* vanished meanwhile */
  }
}

export async function withFileLock<T>(path: string, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const staleMs = options.staleMs ?? 5 * 60_000;
  let delay = 2;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(`${process.pid}@${hostname()}`);
      } finally {
        await fh.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() > deadline) {
        throw new KilnError('LOCK_TIMEOUT', `Cannot lock "${path}": another kiln process holds it`, {
          hint: 'Wait for the other kiln process to finish; if none runs, delete the lock file.',
        });
      }
      await tryBreak(path, staleMs);
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
