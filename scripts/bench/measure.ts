/**
 * Time one command: wall clock (monotonic) and peak RSS, with a hard timeout.
 *
 * The command runs under GNU time (`/usr/bin/time -f %M -o FILE`) when it is installed, so
 * peak RSS is the largest resident set of the process or any descendant it waited for (kB).
 * Never throws for a failing command: the result says ok=false with the exit status and the
 * last lines of stderr, so one broken tool cannot stop a benchmark run.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Measured {
  ok: boolean;
  ms: number;
  /** Peak resident set size in kB, when GNU time is available. */
  rssKb?: number;
  exit?: number | string;
  /** On failure: the last lines of stderr (and stdout). */
  error?: string;
  stdout?: string;
}

export interface CommandSpec {
  argv: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Run through `sh -c` (argv is then [script]). */
  shell?: boolean;
  /** Keep stdout in the result (for commands whose output is data). */
  keepStdout?: boolean;
}

const GNU_TIME = '/usr/bin/time';

/** Process groups of the commands being measured right now (each runs in its own group). */
const active = new Set<number>();

/** Kill every command being measured (SIGKILL to its whole process group), e.g. on Ctrl-C. */
export function killActive(): void {
  for (const pgid of active) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function tail(text: string, lines = 6): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

export async function measure(spec: CommandSpec): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-bench-m-'));
  const rssFile = join(dir, 'rss');
  const inner = spec.shell ? ['sh', '-c', spec.argv[0]!] : spec.argv;
  const argv = existsSync(GNU_TIME) ? [GNU_TIME, '-f', '%M', '-o', rssFile, ...inner] : inner;
  const t0 = process.hrtime.bigint();
  const result = await new Promise<Measured>((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (child.pid) active.add(child.pid);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out = spec.keepStdout ? out + c.toString() : (out + c.toString()).slice(-4096);
    });
    child.stderr.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-8192);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, spec.timeoutMs ?? 30 * 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, ms: 0, exit: 'spawn', error: e.message });
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (child.pid) active.delete(child.pid);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code === 0 && !timedOut) resolve({ ok: true, ms, ...(spec.keepStdout ? { stdout: out } : {}) });
      else {
        const why = timedOut ? `timed out after ${Math.round((spec.timeoutMs ?? 0) / 1000)} s` : `exit ${code ?? sig}`;
        // GNU time prints "Command exited with non-zero status N" into -o file, not stderr.
        resolve({ ok: false, ms, exit: code ?? sig ?? 'unknown', error: `${why}: ${tail(err || out) || '(no output)'}` });
      }
    });
  });
  try {
    const text = await readFile(rssFile, 'utf8');
    const m = /(\d+)\s*$/.exec(text.trim());
    if (m) result.rssKb = Number(m[1]);
  } catch {
    /* no GNU time, or killed before it wrote */
  }
  await rm(dir, { recursive: true, force: true });
  return result;
}

/** Run a setup/cleanup command (untimed); throws with stderr on failure. */
export async function mustRun(spec: CommandSpec): Promise<string> {
  const r = await measure({ ...spec, keepStdout: true });
  if (!r.ok) throw new Error(`${spec.shell ? spec.argv[0] : spec.argv.join(' ')} failed: ${r.error}`);
  return r.stdout ?? '';
}
