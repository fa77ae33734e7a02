import { spawn } from 'node:child_process';
import { kilnBin } from './repo.js';

export interface KilnRun {
  code: number;
  out: string;
  err: string;
  /** stdout as bytes (for tar on stdout). */
  stdout: Buffer;
}

export interface KilnRunOptions {
  /** Added to (and overriding) this process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  stdin?: string | Buffer;
  /** The child is SIGKILLed after this long (uvu has no timeouts). Default 60 s. */
  timeoutMs?: number;
}

/** Run the built kiln CLI; resolves with the exit code and output, never rejects for a non-zero exit. */
export function runKiln(args: string[], opts: KilnRunOptions = {}): Promise<KilnRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [kilnBin, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out);
      resolve({ code: code ?? -1, out: stdout.toString(), err, stdout });
    });
    child.stdin.on('error', () => {}); // the child may exit before reading stdin
    child.stdin.end(opts.stdin ?? '');
  });
}
