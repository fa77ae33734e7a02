import { createHash } from 'node:crypto';
import { DockerfileError, KilnError, NotFoundError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform, type Platform } from '../oci/platform.js';
import { PROXY_ARGS, platformArgs } from './build-args.js';
import { CacheStore, type BuildTraceStep } from './cache-store.js';
import { ContextHasher } from './context-hash.js';
import { expandWord } from './expand.js';
import { finalizeImage } from './finalize-image.js';
import { scratchState, type ImageState } from './image-state.js';
import type { DockerfileDef, StageDef } from './model.js';
import type { BuildRuntime } from './runtime.js';
import { StageBuilder, type StageResult } from './stage-builder.js';
import type { BuildEvent, EngineOptions, EngineResult } from './types.js';
import { Semaphore } from './semaphore.js';

const STAGE_NAME_RE = /^[a-z][a-z0-9-_.]*$/;

/** Everything one build shares between its stages. */
export interface BuildShared {
  opts: EngineOptions;
  def: DockerfileDef;
  runtime: BuildRuntime;
  cache: CacheStore;
  hasher: ContextHasher;
  platform: Platform;
  buildPlatform: Platform;
  /** Meta ARG values (global scope) after --build-arg. */
  globals: Map<string, string>;
  buildArgs: Map<string, string>;
  consumedArgs: Set<string>;
  targetStageName: string;
  stageResult(index: number): Promise<StageResult>;
  stageIndexByName(name: string): number | undefined;
  emit(e: BuildEvent): void;
  memo<T>(key: string, fn: () => Promise<T>): Promise<T>;
  trace: BuildTraceStep[];
  previousTrace: Map<string, BuildTraceStep>;
  stats: { steps: number; cached: number };
  warnings: string[];
  secrets: Map<string, Buffer>;
  sshSockets: Map<string, string>;
  /**
   * A step's layer being compressed in the background: until then its descriptor in an
   * ImageState is a placeholder (size -1). settleLayers() puts the real descriptors in;
   * whatever reads a layer's digest (the image, cache records, a blob to apply) settles first.
   */
  deferLayer(diffId: Digest, descriptor: Promise<Descriptor>): void;
  settleLayers(state: ImageState): Promise<void>;
  /** Work the build must finish (or fail on) before the image is written. */
  background(work: Promise<unknown>): void;
}

export function stageLabel(s: StageDef): string {
  return s.name ?? String(s.index);
}

/**
 * Build one Dockerfile target: the step graph pruned to --target, stages in
 * parallel (bounded by --jobs), identical work shared, each step through the
 * local cache. Writes the final config+manifest into the store.
 */
export async function runBuild(def: DockerfileDef, runtime: BuildRuntime, opts: EngineOptions): Promise<EngineResult> {
  const where = (range: StageDef['range'], instruction: string) => ({ file: def.file, range, instruction });
  if (def.stages.length === 0) {
    throw new DockerfileError('dockerfile contains no stages to build', { file: def.file, code: 'DOCKERFILE_NO_STAGES' });
  }
  for (const s of def.stages) {
    if (s.name !== undefined && !STAGE_NAME_RE.test(s.name.toLowerCase())) {
      throw new DockerfileError(`invalid name for build stage: "${s.name}", name can't start with a number or contain symbols`, {
        ...where(s.range, 'FROM'),
        code: 'DOCKERFILE_STAGE_NAME',
      });
    }
  }
  const platform = opts.platform ? normalizePlatform(opts.platform) : hostPlatform();
  const buildPlatform = hostPlatform();
  const buildArgs = new Map(Object.entries(opts.buildArgs ?? {}));

  // Target.
  let targetIndex = def.stages.length - 1;
  if (opts.target !== undefined) {
    const t = def.stages.findIndex((s) => s.name?.toLowerCase() === opts.target!.toLowerCase());
    if (t === -1) throw new NotFoundError(`target stage "${opts.target}" could not be found`, { code: 'TARGET_NOT_FOUND' });
    targetIndex = t;
  }
  const targetStage = def.stages[targetIndex]!;

  // Meta args (global scope): build args win, then defaults expanded in order.
  const auto = platformArgs(platform, buildPlatform);
  const globals = new Map<string, string>();
  const consumedArgs = new Set<string>();
  for (const a of def.metaArgs) {
    consumedArgs.add(a.name);
    if (buildArgs.has(a.name)) globals.set(a.name, buildArgs.get(a.name)!);
    else if (a.value !== undefined) {
      const env = { get: (k: string) => globals.get(k) ?? auto.get(k) };
      globals.set(a.name, expandWord(a.value, env, where(a.range, 'ARG')).value);
    } else globals.delete(a.name);
  }

  const kilnRoot = runtime.store.root;
  const cache = opts.cacheStore ?? new CacheStore(opts.kilnRoot ?? kilnRoot);
  const hasher = new ContextHasher(cache.dir, opts.contextDir);
  const traceId = createHash('sha256')
    .update(`${'path' in opts.dockerfile ? opts.dockerfile.path : opts.contextDir + '#stdin'}\0${targetStage.name ?? targetIndex}`)
    .digest('hex');
  const previous = opts.explain ? await cache.getTrace(traceId) : undefined;
  const previousTrace = new Map((previous ?? []).map((s) => [`${s.stage}#${s.index}`, s]));

  const memos = new Map<string, Promise<unknown>>();
  const deferred = new Map<string, Promise<Descriptor>>();
  const backgroundWork: Promise<unknown>[] = [];
  const results = new Map<number, Promise<StageResult>>();
  const sem = new Semaphore(Math.max(1, opts.jobs ?? (await import('node:os')).availableParallelism()));
  const secrets = await loadSecrets(opts);
  const sshSockets = sshAgents(opts.ssh ?? []);

  const shared: BuildShared = {
    opts,
    def,
    runtime,
    cache,
    hasher,
    platform,
    buildPlatform,
    globals,
    buildArgs,
    consumedArgs,
    targetStageName: targetStage.name ?? 'default',
    trace: [],
    previousTrace,
    stats: { steps: 0, cached: 0 },
    warnings: [],
    secrets,
    sshSockets,
    emit: (e) => opts.onEvent?.(e),
    deferLayer: (diffId, descriptor) => {
      descriptor.catch(() => undefined); // reported by whoever settles it
      deferred.set(diffId, descriptor);
    },
    settleLayers: async (state) => {
      for (const l of state.layers) {
        if (l.descriptor.size >= 0) continue;
        const d = deferred.get(l.diffId);
        if (!d) throw new KilnError('LAYER_PENDING', `Cannot use layer ${l.diffId}: its compressed blob was never started`);
        l.descriptor = await d;
      }
    },
    background: (work) => {
      work.catch(() => undefined); // awaited (and raised) before the image is written
      backgroundWork.push(work);
    },
    memo: <T>(key: string, fn: () => Promise<T>) => {
      let p = memos.get(key) as Promise<T> | undefined;
      if (!p) {
        p = fn();
        memos.set(key, p);
      }
      return p;
    },
    stageIndexByName: (name) => {
      const i = def.stages.findIndex((s) => s.name?.toLowerCase() === name.toLowerCase());
      return i === -1 ? undefined : i;
    },
    stageResult: (index) => {
      let p = results.get(index);
      if (!p) {
        const builder = new StageBuilder(shared, def.stages[index]!);
        p = (async () => {
          await builder.resolveDependencies();
          return sem.run(() => builder.build());
        })();
        results.set(index, p);
        p.catch(() => undefined);
      }
      return p;
    },
  };

  let final: StageResult;
  try {
    final = await shared.stageResult(targetIndex);
  } catch (err) {
    await Promise.allSettled(backgroundWork); // no blob or record half-written after we return
    throw err;
  } finally {
    await hasher.save().catch(() => undefined);
  }
  await Promise.all(backgroundWork);
  await shared.settleLayers(final.state);
  await cache.putTrace(traceId, shared.trace).catch(() => undefined);

  // Unused --build-arg warning (proxy args are always "used").
  for (const name of buildArgs.keys()) {
    if (!consumedArgs.has(name) && !PROXY_ARGS.has(name)) {
      const msg = `[Warning] One or more build-args [${name}] were not consumed`;
      shared.warnings.push(msg);
      shared.emit({ type: 'warning', message: msg, time: Date.now() });
    }
  }

  const created = process.env.SOURCE_DATE_EPOCH ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000).toISOString() : new Date().toISOString();
  const img = await finalizeImage(runtime.store, final.state, {
    oci: opts.ociMediaTypes !== false,
    labels: opts.labels ?? {},
    annotations: opts.annotations ?? {},
    created,
    fixedTime: process.env.SOURCE_DATE_EPOCH !== undefined,
  });
  return {
    manifest: img.manifest,
    config: img.config,
    layers: img.layers,
    manifestBytes: img.manifestBytes,
    configBytes: img.configBytes,
    imageId: img.config.digest as Digest,
    store: runtime.store,
    stats: shared.stats,
    warnings: shared.warnings,
  };
}

async function loadSecrets(opts: EngineOptions): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const { readFile } = await import('node:fs/promises');
  for (const s of opts.secrets ?? []) {
    if (s.src) out.set(s.id, await readFile(s.src));
    else if (s.env !== undefined) {
      const v = process.env[s.env];
      if (v === undefined) throw new KilnError('SECRET_MISSING', `Cannot read secret "${s.id}": environment variable "${s.env}" is not set`);
      out.set(s.id, Buffer.from(v));
    } else {
      const v = process.env[s.id];
      if (v !== undefined) out.set(s.id, Buffer.from(v));
    }
  }
  return out;
}

/** --ssh values: `default` ($SSH_AUTH_SOCK), `ID=SOCKET`. Key files are not supported (only agent sockets). */
function sshAgents(specs: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const id = eq === -1 ? spec : spec.slice(0, eq);
    const path = eq === -1 ? process.env.SSH_AUTH_SOCK : spec.slice(eq + 1);
    if (!path) throw new KilnError('SSH_MISSING', `Cannot forward SSH agent "${id}": SSH_AUTH_SOCK is not set`, { hint: 'Start ssh-agent, or pass --ssh ID=/path/to/agent.sock.' });
    if (path.split(',').length > 1 || /\.(pem|key)$|id_[a-z0-9]+$/.test(path)) {
      throw new KilnError('SSH_UNSUPPORTED', `Cannot use --ssh ${spec}: kiln forwards agent sockets, not key files`, { hint: 'Load the key into ssh-agent and pass --ssh default.' });
    }
    out.set(id, path);
  }
  return out;
}

/** The platform a stage builds for (FROM --platform, expanded in the global scope). */
export function stagePlatform(shared: BuildShared, stage: StageDef): Platform {
  if (!stage.platform) return shared.platform;
  const auto = platformArgs(shared.platform, shared.buildPlatform);
  const v = expandWord(stage.platform, { get: (k: string) => shared.globals.get(k) ?? auto.get(k) }, { file: shared.def.file, range: stage.range, instruction: 'FROM' }).value;
  return parsePlatform(v);
}

export { scratchState, formatPlatform };
export type { ImageState };
