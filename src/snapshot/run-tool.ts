import { spawn } from 'node:child_process';
import { ProcessError } from '../errors.js';

export interface ToolResult {
  stdout: string;
  stderr: string;
}

/**
 * Run a system tool (mount, umount, getfattr, cp …) without a shell; rejects with
 * ProcessError on a non-zero exit, on a spawn error, or when `timeoutMs` passes
 * (the child is then killed with SIGKILL).
 */
export function runTool(argv: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 60_000);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new ProcessError(argv, null, { cause: e, signal: 'spawn failed', stderrTail: [String(e.message)] }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) return resolve({ stdout, stderr });
      const tail = stderr.trim().split('\n').filter(Boolean).slice(-5);
      if (timedOut) tail.push(`killed after ${options.timeoutMs ?? 60_000} ms`);
      reject(new ProcessError(argv, code, { signal: signal ?? undefined, stderrTail: tail }));
    });
  });
}
