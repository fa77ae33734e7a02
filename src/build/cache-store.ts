import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheKeyParts } from './cache-key.js';
import type { ImageState } from './image-state.js';

/** What a cache record holds: the key parts and the state after the step. */
export interface CacheRecord {
  key: string;
  parts: CacheKeyParts;
  state: ImageState;
}

/** One step as the previous build of a Dockerfile+target saw it (for --explain). */
export interface BuildTraceStep {
  stage: string;
  index: number;
  instruction: string;
  key: string;
  parts: CacheKeyParts;
}

/**
 * Local instruction cache under $KILN_ROOT/cache: records/<hex>.json per step
 * key, traces/<hex>.json per Dockerfile+target. Writes are temp+rename, so two
 * processes never see a torn record; the last writer wins (same content).
 */
export class CacheStore {
  readonly dir: string;
  constructor(kilnRoot: string) {
    this.dir = join(kilnRoot, 'cache');
  }

  private recordPath(key: string): string {
    return join(this.dir, 'records', `${key.replace(/^sha256:/, '')}.json`);
  }

  async get(key: string): Promise<CacheRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.recordPath(key), 'utf8')) as CacheRecord;
    } catch {
      return undefined;
    }
  }

  async put(record: CacheRecord): Promise<void> {
    await atomicWrite(this.recordPath(record.key), JSON.stringify({ ...record, parts: withoutFileList(record.parts) }));
  }

  async getTrace(id: string): Promise<BuildTraceStep[] | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, 'traces', `${id}.json`), 'utf8')) as BuildTraceStep[];
    } catch {
      return undefined;
    }
  }

  async putTrace(id: string, steps: BuildTraceStep[]): Promise<void> {
    await atomicWrite(join(this.dir, 'traces', `${id}.json`), JSON.stringify(steps.map((s) => ({ ...s, parts: withoutFileList(s.parts) }))));
  }
}

/**
 * Parts as stored: the per-file source digests (tens of thousands of entries
 * for a big COPY) are kept once per selection by the context hasher, so a
 * record or trace stays small and a warm rebuild neither parses nor rewrites them.
 */
function withoutFileList(parts: CacheKeyParts): CacheKeyParts {
  if (!parts.sources?.files) return parts;
  return { ...parts, sources: { digest: parts.sources.digest } };
}

export async function atomicWrite(path: string, data: string | Buffer): Promise<void> {
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
