import { ProcessError } from '../errors.js';
import { runToolCollect, ToolStartError } from '../util/tool-launcher.js';

export interface ToolResult {
  stdout: string;
  stderr: string;
}

/**
 * Run a system tool (mount, umount, getfattr, cp …) without a shell; rejects with
 * ProcessError on a non-zero exit, on a start failure, or when `timeoutMs` passes
 * (the child is then killed with SIGKILL).
 */
export async function runTool(argv: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let r;
  try {
    r = await runToolCollect(argv, { ...(options.cwd ? { cwd: options.cwd } : {}), timeoutMs });
  } catch (e) {
    const message = e instanceof ToolStartError ? e.message : String((e as Error).message);
    throw new ProcessError(argv, null, { cause: e, signal: 'spawn failed', stderrTail: [message] });
  }
  const stdout = r.stdout.toString('utf8');
  const stderr = r.stderr.toString('utf8');
  if (r.code === 0) return { stdout, stderr };
  const tail = stderr.trim().split('\n').filter(Boolean).slice(-5);
  if (r.signal === 'SIGKILL') tail.push(`killed after ${timeoutMs} ms`);
  throw new ProcessError(argv, r.code, { signal: r.signal ?? undefined, stderrTail: tail });
}
