import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Path of child-script (compiled .js, or .ts under tsx). */
export const childScript = fileURLToPath(new URL(`./child-script${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

export interface ChildRun {
  lines: Promise<string[]>;
  /** Resolves with the first stdout line. */
  firstLine: Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Run child-script with `args`, optionally behind a wrapper argv (setpriv, unshare …); killed after `timeoutMs`. */
export function runChild(args: object, opts: { wrapper?: string[]; timeoutMs?: number } = {}): ChildRun {
  const argv = [...(opts.wrapper ?? []), process.execPath, ...process.execArgv, childScript, JSON.stringify(args)];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  let out = '';
  let err = '';
  let resolveFirst: (l: string) => void;
  let rejectFirst: (e: Error) => void;
  const firstLine = new Promise<string>((res, rej) => {
    resolveFirst = res;
    rejectFirst = rej;
  });
  firstLine.catch(() => undefined); // awaited only by some callers
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.includes('\n')) resolveFirst(out.slice(0, out.indexOf('\n')));
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      rejectFirst(new Error(`child exited (${code ?? signal}) before printing: ${err.trim().slice(-2000)}`));
      res({ code, signal, stderr: err });
    });
  });
  return {
    firstLine,
    lines: exit.then(() => out.split('\n').filter(Boolean)),
    exit,
    kill: (signal = 'SIGKILL') => child.kill(signal),
  };
}
