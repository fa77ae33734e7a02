import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dockerignoreMatcher } from '../dockerfile/dockerignore.js';
import { KilnError } from '../errors.js';
import type { IncludeFilter } from './copy-files.js';

const cache = new Map<string, IncludeFilter | undefined>();

/**
 * The .dockerignore filter of a context (`<Dockerfile>.dockerignore` wins
 * over `<context>/.dockerignore`), as an include predicate for COPY and
 * context hashing. An excluded directory is still walked when the file has
 * `!` exceptions (it may hold re-included paths).
 */
export async function contextFilter(contextDir: string, dockerfilePath: string | undefined): Promise<IncludeFilter | undefined> {
  let file: string | undefined;
  if (dockerfilePath && existsSync(`${dockerfilePath}.dockerignore`)) file = `${dockerfilePath}.dockerignore`;
  else if (existsSync(join(contextDir, '.dockerignore'))) file = join(contextDir, '.dockerignore');
  // Keyed by the ignore file's identity, so an edited file is read again.
  const st = file ? statSync(file) : undefined;
  const id = `${contextDir}\0${file ?? ''}\0${st ? `${st.size}:${st.mtimeMs}:${st.ino}` : ''}`;
  if (cache.has(id)) return cache.get(id);
  let filter: IncludeFilter | undefined;
  if (file) {
    let matcher;
    try {
      matcher = dockerignoreMatcher(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new KilnError('DOCKERIGNORE_INVALID', `Cannot read "${file}": ${(err as Error).message}`, { cause: err });
    }
    const memo = new Map<string, boolean>();
    filter = (rel, isDir) => {
      const k = `${isDir ? 'd' : 'f'}${rel}`;
      let v = memo.get(k);
      if (v === undefined) {
        v = !matcher.matches(rel) || (isDir && matcher.hasExclusions);
        memo.set(k, v);
      }
      return v;
    };
  }
  cache.set(id, filter);
  return filter;
}
