/** `build` of the Node API and `kiln build`: run the engine, then write the outputs. */
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { buildImage } from '../build/build.js';
import type { BuildCache } from '../build/cache-export.js';
import type { BuildEvent, SecretSpec } from '../build/types.js';
import { UsageError } from '../errors.js';
import { exportImage } from './export-image.js';
import { type OutputSpec, parseOutputSpec } from './output-spec.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { parsePlatform } from '../oci/platform.js';
import type { Isolation } from '../sandbox/types.js';


/** Options of `build`, mirroring `kiln build` flags. */
export interface BuildOptions {
  /** Context directory (default "."). */
  context?: string;
  /** Dockerfile path (default <context>/Dockerfile) … */
  file?: string;
  /** … or its text (`kiln build -` / `-f -`). */
  dockerfileText?: string;
  tags?: string[];
  target?: string;
  buildArgs?: Record<string, string>;
  /** "linux/amd64" */
  platform?: string;
  noCache?: boolean;
  noCacheFilter?: string[];
  pull?: boolean;
  jobs?: number;
  isolation?: Isolation;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Default true; false writes Docker schema2 media types. */
  ociMediaTypes?: boolean;
  /** "gzip", "zstd", "zstd,level=3", "uncompressed" */
  compression?: string;
  secrets?: SecretSpec[];
  ssh?: string[];
  buildContexts?: Record<string, string>;
  /** -o values (CSV strings or parsed specs). */
  outputs?: Array<string | OutputSpec>;
  push?: boolean;
  explain?: boolean;
  /** --cache-from values: REF, type=registry,ref=REF, type=local,src=DIR. */
  cacheFrom?: string[];
  /** --cache-to values: type=registry,ref=REF[,mode=…], type=local,dest=DIR, type=inline. */
  cacheTo?: string[];
  insecureRegistries?: string[];
  kilnRoot?: string;
  onEvent?: (e: BuildEvent) => void;
  signal?: AbortSignal;
  /** Where `-o -` / `type=tar,dest=-` write. */
  stdout?: Writable;
}

export interface BuildResult {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** Config digest, as `docker build` prints it. */
  imageId: Digest;
  /** Normalised names tagged locally / pushed. */
  names: string[];
  pushed: string[];
  /** BuildKit's metadata-file keys. */
  metadata: Record<string, unknown>;
  warnings: string[];
  stats: { steps: number; cached: number };
}

/** "gzip" | "zstd[,level=N]" | "uncompressed" → compression option. */
export function parseCompressionFlag(v: string): { compression: 'gzip' | 'zstd' | 'none'; level?: number } {
  const [name, ...rest] = v.split(',');
  const c = name === 'uncompressed' ? 'none' : name;
  if (c !== 'gzip' && c !== 'zstd' && c !== 'none') throw new UsageError(`Invalid --compression "${v}"`, { hint: 'Use gzip, zstd or uncompressed, optionally with ,level=N.' });
  const out: { compression: 'gzip' | 'zstd' | 'none'; level?: number } = { compression: c };
  for (const kv of rest) {
    const m = /^level=(\d+)$/.exec(kv);
    if (!m) throw new UsageError(`Invalid --compression "${v}": unknown option "${kv}"`);
    out.level = Number(m[1]);
  }
  return out;
}

/** Build a Dockerfile and write the image to its outputs (default: tag it in the local store). */
export async function build(opts: BuildOptions = {}): Promise<BuildResult> {
  const specs = (opts.outputs ?? []).map((o) => (typeof o === 'string' ? parseOutputSpec(o) : o));
  const push = opts.push === true || specs.some((o) => o.type === 'image' && o.push);
  // Without --cache-from/--cache-to/push the cache side is the local instruction
  // cache alone: skip loading the cache exporter (and the registry client), which
  // keeps a warm local rebuild fast.
  if (!push && !opts.cacheFrom?.length && !opts.cacheTo?.length) return buildWithCache(opts, undefined);
  const { prepareBuildCache } = await import('../build/cache-export.js');
  const cache = await prepareBuildCache({ ...opts, push });
  try {
    return await buildWithCache(opts, cache);
  } finally {
    await cache.close();
  }
}

async function buildWithCache(opts: BuildOptions, cache: BuildCache | undefined): Promise<BuildResult> {
  const contextDir = resolve(opts.context ?? '.');
  const dockerfile = opts.dockerfileText !== undefined ? { text: opts.dockerfileText, name: 'Dockerfile' } : { path: resolve(contextDir, opts.file ?? 'Dockerfile') };
  const outputs = (opts.outputs ?? []).map((o) => (typeof o === 'string' ? parseOutputSpec(o) : o));
  const engine = await buildImage({
    contextDir,
    dockerfile,
    ...(opts.target !== undefined ? { target: opts.target } : {}),
    buildArgs: opts.buildArgs ?? {},
    ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}),
    noCache: opts.noCache === true,
    noCacheFilter: opts.noCacheFilter ?? [],
    pull: opts.pull === true,
    ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
    ...(opts.isolation ? { isolation: opts.isolation } : {}),
    labels: opts.labels ?? {},
    annotations: opts.annotations ?? {},
    ociMediaTypes: opts.ociMediaTypes !== false,
    ...(opts.compression ? { compression: parseCompressionFlag(opts.compression) } : {}),
    secrets: opts.secrets ?? [],
    ssh: opts.ssh ?? [],
    buildContexts: opts.buildContexts ?? {},
    explain: opts.explain === true,
    ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}),
    ...(opts.kilnRoot ? { kilnRoot: opts.kilnRoot } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(cache ? { store: cache.store, cacheStore: cache.cacheStore } : {}),
  });
  if (cache) {
    const { finishBuildCache } = await import('../build/cache-export.js');
    Object.assign(engine, await finishBuildCache(cache, engine));
  }
  const image = { manifest: engine.manifest, config: engine.config, layers: engine.layers };
  const exported = await exportImage({
    store: engine.store,
    image,
    tags: opts.tags ?? [],
    outputs,
    push: opts.push === true,
    ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}),
    ...(opts.stdout ? { stdout: opts.stdout } : {}),
    onInfo: (m) => opts.onEvent?.({ type: 'info', message: m, time: Date.now() }),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (cache) await cache.exportCache(engine.layers);
  const metadata: Record<string, unknown> = {
    'containerimage.digest': engine.manifest.digest,
    'containerimage.config.digest': engine.config.digest,
    'containerimage.descriptor': { mediaType: engine.manifest.mediaType, digest: engine.manifest.digest, size: engine.manifest.size },
  };
  if (exported.names.length) metadata['image.name'] = exported.names.join(',');
  return {
    ...image,
    imageId: engine.imageId,
    names: exported.names,
    pushed: exported.pushed,
    metadata,
    warnings: engine.warnings,
    stats: engine.stats,
  };
}

/**
 * `build` with its progress as an async iterable: iterate `events` while the
 * build runs; it ends when the build settles. `result` rejects as `build` would.
 * Events are buffered, so a slow consumer never stalls the build.
 */
export function buildWithEvents(opts: BuildOptions = {}): { events: AsyncIterable<BuildEvent>; result: Promise<BuildResult> } {
  const queue: BuildEvent[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  const user = opts.onEvent;
  const result = build({
    ...opts,
    onEvent: (e) => {
      user?.(e);
      queue.push(e);
      wake?.();
    },
  }).finally(() => {
    done = true;
    wake?.();
  });
  result.catch(() => undefined);
  const events: AsyncIterable<BuildEvent> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (done) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    },
  };
  return { events, result };
}
