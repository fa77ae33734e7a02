import { createHash } from 'node:crypto';

/**
 * The parts a step's cache key is made of (issue 7 "Keys"). They are stored
 * with the result so that a miss can be explained part by part.
 */
export interface CacheKeyParts {
  /** The instruction after expansion, as it runs (flags included). */
  instruction: string;
  /** Key of the previous step, or "base:<manifest digest>" / "scratch" for the first. */
  parent: string;
  platform: string;
  /** Build args and env values the step actually reads (name → value). */
  args: Record<string, string>;
  /**
   * COPY/ADD: digest over exactly the selected sources, and per-file digests
   * for explain (not stored with records and traces: see ContextHasher.filesOf).
   */
  sources?: { digest: string; files?: Record<string, string> };
  /** Other inputs (the key of a --from stage, mount sources…). */
  inputs?: Record<string, string>;
}

function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}

/** sha256 over the canonical JSON of the parts (per-file source digests are covered by sources.digest). */
export function cacheKey(parts: CacheKeyParts): string {
  const { sources, ...rest } = parts;
  const body = canonical({ ...rest, sources: sources?.digest, v: 1 });
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** Human description of what differs between an old and a new set of parts. Empty when equal. */
export function explainParts(prev: CacheKeyParts | undefined, next: CacheKeyParts): string[] {
  if (!prev) return ['no previous build of this step'];
  const out: string[] = [];
  if (prev.instruction !== next.instruction) out.push(`instruction changed: "${prev.instruction}" → "${next.instruction}"`);
  if (prev.platform !== next.platform) out.push(`platform changed: ${prev.platform} → ${next.platform}`);
  const names = new Set([...Object.keys(prev.args), ...Object.keys(next.args)]);
  for (const n of [...names].sort()) {
    const a = prev.args[n];
    const b = next.args[n];
    if (a !== b) out.push(`arg ${n} changed: ${a === undefined ? '(unset)' : JSON.stringify(a)} → ${b === undefined ? '(unset)' : JSON.stringify(b)}`);
  }
  if ((prev.sources?.digest ?? '') !== (next.sources?.digest ?? '')) {
    // Without both file lists (one side has no sources, or its list was not kept) only the fact is known.
    const pf = prev.sources ? prev.sources.files : {};
    const nf = next.sources ? next.sources.files : {};
    const changed: string[] = [];
    if (pf && nf) {
      const files = new Set([...Object.keys(pf), ...Object.keys(nf)]);
      for (const f of [...files].sort()) {
        if (pf[f] === nf[f]) continue;
        changed.push(pf[f] === undefined ? `file added: ${f}` : nf[f] === undefined ? `file removed: ${f}` : `file changed: ${f}`);
      }
    }
    out.push(...(changed.length ? changed : ['source files changed']));
  }
  const inputs = new Set([...Object.keys(prev.inputs ?? {}), ...Object.keys(next.inputs ?? {})]);
  for (const n of [...inputs].sort()) {
    if (prev.inputs?.[n] !== next.inputs?.[n]) out.push(`${n} changed: ${prev.inputs?.[n] ?? '(none)'} → ${next.inputs?.[n] ?? '(none)'}`);
  }
  if (out.length === 0 && prev.parent !== next.parent) {
    out.push(prev.parent.startsWith('base:') || next.parent.startsWith('base:') ? `base image changed: ${prev.parent.replace(/^base:/, '')} → ${next.parent.replace(/^base:/, '')}` : 'a previous step changed');
  }
  return out;
}
