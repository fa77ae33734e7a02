import { DockerfileError, KilnError } from '../errors.js';

/** Lines of the Dockerfile around the failure, the failing ones marked ">>>". */
export function dockerfileExcerpt(source: string, startLine: number, endLine: number, context = 2): string {
  const lines = source.split(/\r?\n/);
  const from = Math.max(1, startLine - context);
  const to = Math.min(lines.length, endLine + context);
  const width = String(to).length;
  const out: string[] = [];
  for (let n = from; n <= to; n++) {
    const mark = n >= startLine && n <= endLine ? '>>>' : '   ';
    out.push(` ${String(n).padStart(width)} | ${mark} ${lines[n - 1] ?? ''}`);
  }
  return out.join('\n');
}

/** Render an error for the terminal: message, excerpt for Dockerfile errors, hint. */
export function formatError(err: unknown, sources: Map<string, string> = new Map(), debug = false): string {
  if (err instanceof KilnError) {
    const parts = [`ERROR: ${err.message}`];
    if (err instanceof DockerfileError && err.range) {
      const src = sources.get(err.file);
      if (src !== undefined) {
        parts.push('', `${err.file}:${err.range.startLine}`, '--------------------', dockerfileExcerpt(src, err.range.startLine, err.range.endLine), '--------------------');
      }
    }
    const extra = (err as { stderrTail?: string[] }).stderrTail;
    if (extra && extra.length) parts.push('', 'Last output:', ...extra.map((l) => `  ${l}`));
    if (err.hint) parts.push(`hint: ${err.hint}`);
    if (debug && err.stack) parts.push('', err.stack);
    return parts.join('\n') + '\n';
  }
  const e = err as Error;
  return `ERROR: internal error: ${e?.message ?? String(err)}\n${e?.stack ?? ''}\nThis is a bug in kiln; please report it.\n`;
}
