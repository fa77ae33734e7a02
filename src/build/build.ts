import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { openContentStore } from '../content/oci-layout-store.js';
import type { ContentStore } from '../content/types.js';
import { DockerfileError, KilnError, NotFoundError } from '../errors.js';
import { kilnRoot as defaultKilnRoot } from '../util/paths.js';
import { runBuild } from './engine.js';
import { loadDockerfile } from './frontend.js';
import { defaultRuntime } from './runtime-default.js';
import type { EngineOptions, EngineResult } from './types.js';

/** Errors of a build carry the Dockerfile sources so the CLI can print an excerpt. */
export type BuildError = KilnError & { sources?: Map<string, string> };

/**
 * Build with kiln's real modules: read the Dockerfile, open the store under
 * $KILN_ROOT, run the engine. The caller exports the result (src/export).
 */
export async function buildImage(opts: Omit<EngineOptions, 'store'> & { store?: ContentStore }): Promise<EngineResult & { dockerfile: string }> {
  const root = opts.kilnRoot ?? defaultKilnRoot();
  const store = opts.store ?? openContentStore(root);
  let text: string;
  let file: string;
  if ('path' in opts.dockerfile) {
    file = opts.dockerfile.path;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new NotFoundError(`Cannot read Dockerfile "${file}": ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, {
        code: 'DOCKERFILE_NOT_FOUND',
        hint: 'Pass the Dockerfile with -f, or run kiln build in the directory that holds it.',
        cause: err,
      });
    }
  } else {
    text = opts.dockerfile.text;
    file = opts.dockerfile.name;
  }
  const sources = new Map([[file, text]]);
  const runtime = defaultRuntime({
    store,
    kilnRoot: root,
    ...(opts.isolation ? { isolation: opts.isolation } : {}),
    ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}),
    onInfo: (m) => opts.onEvent?.({ type: 'info', message: m, time: Date.now() }),
  });
  try {
    const def = loadDockerfile(text, file);
    const result = await runBuild(def, runtime, { ...opts, contextDir: resolve(opts.contextDir), store, kilnRoot: root });
    return { ...result, dockerfile: file };
  } catch (err) {
    if (err instanceof KilnError) {
      const e = err as BuildError;
      e.sources = sources;
      // A failing RUN: attach the Dockerfile location so the CLI shows the excerpt.
      const loc = (err as { dockerfile?: { file: string; range: { startLine: number; endLine: number } } }).dockerfile;
      if (loc && !(err instanceof DockerfileError)) {
        const wrapped = new DockerfileError(err.message, { file: loc.file, range: loc.range, code: err.code, cause: err, ...(err.hint ? { hint: err.hint } : {}) }) as BuildError;
        Object.assign(wrapped, { stderrTail: (err as { stderrTail?: string[] }).stderrTail ?? [] });
        Object.defineProperty(wrapped, 'message', { value: err.message });
        wrapped.sources = sources;
        throw wrapped;
      }
    }
    throw err;
  } finally {
    await runtime.close();
  }
}
