/** Summary statistics and the text table of a benchmark run. */

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summary(xs: number[]): { median: number; min: number; max: number } {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

export function fmtSeconds(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  const s = ms / 1000;
  return s < 10 ? `${s.toFixed(3)}s` : s < 100 ? `${s.toFixed(2)}s` : `${s.toFixed(1)}s`;
}

export function fmtRatio(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return '—';
  return r < 0.1 ? `${r.toPrecision(2)}×` : `${r.toFixed(2)}×`;
}

export function fmtMb(kb: number | undefined): string {
  return kb === undefined ? '—' : `${(kb / 1024).toFixed(0)} MB`;
}

/** Render rows as an aligned text table (first row = header), with a rule under the header. */
export function renderTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join('\n');
}

/** The same table as GitHub markdown. */
export function renderMarkdown(rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  const out = [`| ${rows[0]!.map(esc).join(' | ')} |`, `| ${rows[0]!.map(() => '---').join(' | ')} |`];
  for (const r of rows.slice(1)) out.push(`| ${r.map(esc).join(' | ')} |`);
  return out.join('\n');
}
