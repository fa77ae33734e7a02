import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { KilnError, ProcessError } from '../errors.js';
import { findSetpriv } from './setpriv-helper.js';

const TAIL_BYTES = 16 * 1024;
const BASH = '/bin/bash';
/** Close every fd above 2, then exec "$@". (bash's PWD/SHLVL/_ are undone by ENV_FIX_KEYS in the sandbox.) */
const CLOSE_FDS = 'k=$1; shift; for f in /proc/$$/fd/*; do n=${f##*/}; if [ "$n" -gt 2 ] && [ "$n" != "$k" ] && [ -e "$f" ]; then exec {n}>&-; fi; done; unset k f n; exec "$@"';
const TAIL_LINES = 10;

export interface SpawnSandboxOptions {
  /** The user's argv, for ProcessError. */
  argv: string[];
  display?: string;
  env: Record<string, string>;
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  signal?: AbortSignal;
  /**
   * Stderr line prefix the runtime uses for its own setup failures (e.g. "bwrap: "):
   * exit code 1 with that last line is a KilnError SANDBOX_SETUP, not the step's failure.
   */
  setupErrorPrefix?: string;
  /** Data the runtime reads from fd 3 (bwrap --args 3): kept out of argv, which every host user can read. */
  argsData?: Buffer;
  /** Kill the whole sandboxed tree (default: SIGKILL to the child, whose death takes the sandbox down). */
  kill?: (child: ChildProcess) => Promise<void> | void;
}

/**
 * Spawn a sandbox runtime (bwrap, runc, unshare …) with a new session, no
 * fds beyond stdio and a parent-death signal, stream its output, and settle when it exits:
 * ProcessError (BuildKit wording, last stderr lines) on non-zero exit,
 * signal.reason after an abort.
 */
export function spawnSandbox(file: string, args: string[], opts: SpawnSandboxOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(opts.signal.reason);
      return;
    }
    // The runtime gets SIGKILL if kiln dies without aborting (kill -9, crash), and takes the step down with it.
    const setpriv = findSetpriv();
    let argv = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', file, ...args] : [file, ...args];
    // kiln's own fds are close-on-exec; bash closes those kiln inherited without it (its caller's leaks).
    if (existsSync(BASH)) argv = [BASH, '-c', CLOSE_FDS, 'kiln-closefds', opts.argsData ? '3' : '-', ...argv];
    const child = spawn(argv[0]!, argv.slice(1), { env: opts.env, stdio: ['ignore', 'pipe', 'pipe', ...(opts.argsData ? ['pipe' as const] : [])], detached: true });
    if (opts.argsData) {
      const fd3 = child.stdio[3] as NodeJS.WritableStream;
      fd3.on('error', () => undefined);
      fd3.end(opts.argsData);
    }
    let tail = Buffer.alloc(0);
    let aborted = false;
    child.stdout!.on('data', (c: Buffer) => opts.onOutput?.('stdout', c));
    child.stderr!.on('data', (c: Buffer) => {
      tail = Buffer.concat([tail, c]);
      if (tail.length > TAIL_BYTES) tail = tail.subarray(tail.length - TAIL_BYTES);
      opts.onOutput?.('stderr', c);
    });
    const onAbort = () => {
      aborted = true;
      Promise.resolve(opts.kill ? opts.kill(child) : undefined)
        .catch(() => undefined)
        .finally(() => {
          try {
            child.kill('SIGKILL');
          } catch {
            // gone
          }
        });
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (aborted) {
        reject(opts.signal!.reason);
        return;
      }
      if (code === 0) {
        resolve();
        return;
      }
      const lines = tail.toString('utf8').split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l !== '');
      const shown = quoteDisplay(opts.display ?? opts.argv.join(' '));
      const last = lines[lines.length - 1];
      if (code === 1 && opts.setupErrorPrefix && last?.startsWith(opts.setupErrorPrefix)) {
        reject(
          new KilnError('SANDBOX_SETUP', `Cannot start the sandbox for ${shown}: ${last}`, {
            hint: 'Run "kiln doctor" to check this host, or try another --isolation.',
          }),
        );
        return;
      }
      const o: ConstructorParameters<typeof ProcessError>[2] = { display: shown, stderrTail: lines.slice(-TAIL_LINES) };
      if (sig) o.signal = sig;
      reject(new ProcessError(opts.argv, code, o));
    });
  });
}

/** Go's %q of the command, as BuildKit prints it; a display already quoted that way is kept. */
export function quoteDisplay(display: string): string {
  if (display.length >= 2 && display.startsWith('"') && display.endsWith('"')) {
    try {
      if (typeof JSON.parse(display) === 'string') return display;
    } catch {
      // not a quoted string
    }
  }
  return JSON.stringify(display);
}
