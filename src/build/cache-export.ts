import { createHash } from 'node:crypto';
import { rmdir } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { openContentStore } from '../content/oci-layout-store.js';
import type { ContentStore } from '../content/types.js';
import { DigestMismatchError, KilnError } from '../errors.js';
import { compress } from '../layer/compress.js';
import { changesFromTree } from '../layer/walk-tree.js';
import { writeLayer } from '../layer/write-layer.js';
import { lockFile } from '../sandbox/cache-lock.js';
import { observeCacheMounts, type CacheMountUse } from '../sandbox/run-mounts.js';
import { decompressed } from '../layer/decompress.js';
import type { CompressionSpec } from '../layer/types.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig, Manifest } from '../oci/manifest.js';
import { MediaType, layerCompression, layerMediaType } from '../oci/media-types.js';
import { hostPlatform, parsePlatform, type Platform } from '../oci/platform.js';
import { kilnRoot } from '../util/paths.js';
import { mapLimit, openRegistryClient, pushImage, type RegistryClient } from '../registry/index.js';
import { type CacheDocument, CACHE_MOUNT_ID_ANNOTATION, INLINE_CACHE_FIELD, cacheManifest, encodeCacheDocument, selectRecords } from './cache-manifest.js';
import { CacheImport, ImportingCacheStore, LOCAL_CACHE_TAG, lazyContentStore } from './cache-import.js';
import { parseCacheFrom, parseCacheTo, type CacheFromSpec, type CacheToSpec } from './cache-spec.js';
import type { CacheRecord } from './cache-store.js';
import type { BuildEvent } from './types.js';

/** Parallel blob transfers of one export. */
const CONCURRENCY = 4;

export interface CacheExportContext {
  /** Store holding (or lazily fetching) every blob the records use. */
  store: ContentStore;
  /** Every record the build used or wrote. */
  records: Iterable<CacheRecord>;
  /** Layers of the built image (mode=min keeps the records they are a prefix of). */
  finalLayers: readonly Descriptor[];
  client: () => Promise<RegistryClient>;
  /** Cache mounts the build used, id → where (exported by specs with mounts=true). */
  mounts?: ReadonlyMap<string, CacheMountUse>;
  onInfo?: (message: string) => void;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

/**
 * One layer per cache mount (its whole directory, read under a shared lock),
 * annotated with its id, in `compression` (default gzip); ordered by id.
 */
function writeMountLayers(store: ContentStore, mounts: ReadonlyMap<string, CacheMountUse>, compression: CompressionSpec | undefined, signal?: AbortSignal): Promise<Descriptor[]> {
  // Exports in the same compression share one write of each mount.
  const key = JSON.stringify(compression ?? null);
  let written = mountLayerWrites.get(mounts)?.get(key);
  if (!written) {
    written = writeMountLayersOnce(store, mounts, compression, signal);
    const m = mountLayerWrites.get(mounts) ?? new Map<string, Promise<Descriptor[]>>();
    m.set(key, written);
    mountLayerWrites.set(mounts, m);
  }
  return written;
}

const mountLayerWrites = new WeakMap<ReadonlyMap<string, CacheMountUse>, Map<string, Promise<Descriptor[]>>>();

async function writeMountLayersOnce(store: ContentStore, mounts: ReadonlyMap<string, CacheMountUse>, compression: CompressionSpec | undefined, signal?: AbortSignal): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  for (const id of [...mounts.keys()].sort()) {
    const m = mounts.get(id)!;
    const lock = await lockFile(m.lockPath, 'shared', signal ? { wait: true, signal } : { wait: true });
    try {
      const r = await writeLayer(store, {
        root: m.dir,
        changes: await changesFromTree(m.dir),
        compression: compression?.compression ?? 'gzip',
        ...(compression?.level !== undefined ? { level: compression.level } : {}),
      });
      out.push({ ...r.descriptor, annotations: { [CACHE_MOUNT_ID_ANNOTATION]: id } });
    } finally {
      await lock?.release();
    }
  }
  return out;
}

/**
 * Write the build cache to every `type=registry` and `type=local` target, all
 * at once. A registry export is an OCI manifest (config: the CacheDocument,
 * media type MediaType.KilnCacheConfig; layers: every blob the records use)
 * pushed with blobs in parallel and HEAD-skipped when the registry has them.
 * A local export is the same manifest in an OCI layout, tagged "latest".
 * With mounts=true the manifest also lists one layer per cache mount the
 * build used (see writeMountLayers).
 * `type=inline` is not handled here (attachInlineCache, before the push).
 */
export async function exportCache(specs: readonly CacheToSpec[], ctx: CacheExportContext): Promise<void> {
  const records = [...ctx.records];
  // Every export finishes (or fails) before this returns: the caller then closes the client.
  const settled = await Promise.allSettled(
    specs.map(async (spec) => {
      if (spec.type === 'inline') return;
      const target = spec.type === 'registry' ? `"${spec.ref}"` : `local directory "${spec.dest}"`;
      try {
        let selected = selectRecords(records, spec.mode, ctx.finalLayers);
        if (spec.compression) selected = await recompressRecords(ctx.store, selected, spec.compression);
        const mountLayers = spec.mounts && ctx.mounts ? await writeMountLayers(ctx.store, ctx.mounts, spec.compression, ctx.signal) : [];
        const { manifest, blobs } = await writeCacheManifest(ctx.store, selected, mountLayers);
        if (spec.type === 'registry') {
          const client = await ctx.client();
          const r = await pushImage(ctx.store, manifest, spec.ref, { client, concurrency: CONCURRENCY, ...(ctx.signal ? { signal: ctx.signal } : {}) });
          ctx.onInfo?.(`exported cache to ${target}: ${selected.length} records${spec.mounts ? `, ${mountLayers.length} cache mounts` : ''}, ${r.uploaded} blobs uploaded, ${r.existed} already there, ${r.mounted} mounted`);
        } else {
          const copied = await writeLocalCache(ctx.store, resolvePath(spec.dest), manifest, blobs);
          ctx.onInfo?.(`exported cache to ${target}: ${selected.length} records${spec.mounts ? `, ${mountLayers.length} cache mounts` : ''}, ${copied} blobs written`);
        }
      } catch (err) {
        if (!spec.ignoreError || ctx.signal?.aborted) {
          if (ctx.signal?.aborted) throw err;
          const k = err instanceof KilnError ? err : undefined;
          throw new KilnError(k?.code ?? 'CACHE_EXPORT', `Cannot export build cache to ${target}: ${(err as Error).message}`, {
            cause: err,
            hint: k?.hint ?? 'Add ignore-error=true to the --cache-to value to build anyway.',
          });
        }
        ctx.onWarning?.(`Cannot export build cache to ${target} (ignored): ${(err as Error).message}`);
      }
    }),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Store the CacheDocument and its manifest; returns the manifest descriptor and every blob it names. */
async function writeCacheManifest(store: ContentStore, records: CacheRecord[], mountLayers: readonly Descriptor[]): Promise<{ manifest: Descriptor; blobs: Descriptor[] }> {
  const doc = encodeCacheDocument(records);
  const cfgBytes = Buffer.from(JSON.stringify(doc));
  const cfg = await store.write(cfgBytes, { what: 'cache config' });
  const config: Descriptor = { mediaType: MediaType.KilnCacheConfig, digest: cfg.digest, size: cfg.size };
  const m = cacheManifest(config, doc, mountLayers);
  const raw = Buffer.from(JSON.stringify(m));
  const info = await store.write(raw, { what: 'cache manifest' });
  return { manifest: { mediaType: MediaType.OciManifest, digest: info.digest, size: info.size }, blobs: [m.config, ...m.layers, { mediaType: MediaType.OciManifest, digest: info.digest, size: info.size }] };
}

/** Copy the blobs a layout lacks (in parallel), then tag the manifest; returns how many were copied. */
async function writeLocalCache(store: ContentStore, dir: string, manifest: Descriptor, blobs: Descriptor[]): Promise<number> {
  const layout = openContentStore(dir);
  let copied = 0;
  await mapLimit(blobs, CONCURRENCY, async (d) => {
    if (await layout.stat(d.digest)) return;
    await layout.ingest(await store.open(d.digest), { digest: d.digest, size: d.size, what: `cache blob "${d.digest}"` });
    copied++;
  });
  await layout.setTag(LOCAL_CACHE_TAG, manifest);
  await rmdir(join(dir, 'ingest')).catch(() => undefined);
  return copied;
}

/**
 * Records with every layer in `spec`'s compression: a layer compressed
 * otherwise is decompressed (its diffId checked) and compressed again into
 * the store; records then name the new blob. Each blob is converted once.
 */
async function recompressRecords(store: ContentStore, records: CacheRecord[], spec: CompressionSpec): Promise<CacheRecord[]> {
  const converted = new Map<Digest, Promise<Descriptor>>();
  const convert = (d: Descriptor, diffId: Digest): Promise<Descriptor> => {
    let p = converted.get(d.digest);
    if (!p) {
      p = (async () => {
        const { stream } = await decompressed(await store.open(d.digest));
        const hash = createHash('sha256');
        async function* hashed(): AsyncGenerator<Buffer> {
          for await (const c of stream) {
            hash.update(c);
            yield c;
          }
        }
        const info = await store.ingest(compress(hashed(), spec), { what: `recompressed layer "${d.digest}"` });
        const got = `sha256:${hash.digest('hex')}`;
        if (got !== diffId) throw new DigestMismatchError(diffId, got, 0, { what: `uncompressed layer "${d.digest}"` });
        return { mediaType: layerMediaType(spec.compression, true), digest: info.digest, size: info.size };
      })();
      converted.set(d.digest, p);
    }
    return p;
  };
  const out: CacheRecord[] = [];
  for (const r of records) {
    const layers = await Promise.all(
      r.state.layers.map(async (l) => (layerCompression(l.descriptor.mediaType) === spec.compression ? l : { descriptor: await convert(l.descriptor, l.diffId), diffId: l.diffId })),
    );
    out.push({ ...r, state: { config: r.state.config, layers } });
  }
  return out;
}

export interface InlineImage {
  manifest: Descriptor;
  config: Descriptor;
  manifestBytes: Buffer;
  configBytes: Buffer;
}

/**
 * The image with inline cache: its config gains INLINE_CACHE_FIELD holding
 * the mode=min records (their blobs are the image's own layers), and a new
 * manifest points at it. Other bytes of config and manifest are unchanged.
 */
export async function attachInlineCache(store: ContentStore, image: InlineImage, records: Iterable<CacheRecord>, layers: readonly Descriptor[]): Promise<InlineImage> {
  return rewriteInlineField(store, image, encodeCacheDocument(selectRecords(records, 'min', layers)));
}

/**
 * The image without inline cache: a base image's field, inherited through
 * its config, is dropped (BuildKit drops moby.buildkit.cache.v0 likewise).
 * The image is returned as is when it has none.
 */
export async function stripInlineCache(store: ContentStore, image: InlineImage): Promise<InlineImage> {
  const config = JSON.parse(image.configBytes.toString('utf8')) as Record<string, unknown>;
  return INLINE_CACHE_FIELD in config ? rewriteInlineField(store, image, undefined) : image;
}

async function rewriteInlineField(store: ContentStore, image: InlineImage, doc: CacheDocument | undefined): Promise<InlineImage> {
  const config = JSON.parse(image.configBytes.toString('utf8')) as ImageConfig & Record<string, unknown>;
  delete config[INLINE_CACHE_FIELD];
  if (doc) config[INLINE_CACHE_FIELD] = doc;
  const configBytes = Buffer.from(JSON.stringify(config));
  const cfg = await store.write(configBytes, { what: 'image config' });
  const manifest = JSON.parse(image.manifestBytes.toString('utf8')) as Manifest;
  manifest.config = { ...manifest.config, digest: cfg.digest, size: cfg.size };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const m = await store.write(manifestBytes, { what: 'image manifest' });
  return {
    manifest: { ...image.manifest, digest: m.digest, size: m.size },
    config: { ...image.config, digest: cfg.digest, size: cfg.size },
    manifestBytes,
    configBytes,
  };
}

export interface BuildCacheOptions {
  kilnRoot: string;
  /** The local content store. */
  store: ContentStore;
  cacheFrom: readonly CacheFromSpec[];
  cacheTo: readonly CacheToSpec[];
  /** Carry inline cache in the image (images kiln pushes do by default). */
  inline: boolean;
  platform: Platform;
  insecureRegistries?: string[];
  onInfo?: (message: string) => void;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

/** The cache side of one build: what the engine reads through, and what runs after it. */
export interface BuildCache {
  /** The store the build uses (fetches imported blobs when needed). */
  store: ContentStore;
  /** The instruction cache the engine looks keys up in (local, then imported). */
  cacheStore: ImportingCacheStore;
  imported: CacheImport | undefined;
  /** The image to export: with inline cache when asked for. */
  finishImage(image: InlineImage, layers: readonly Descriptor[]): Promise<InlineImage>;
  /** Registry and local exports. */
  exportCache(layers: readonly Descriptor[]): Promise<void>;
  /** Keep used imported records locally, close the registry client. Always call. */
  close(): Promise<void>;
}

/**
 * Set up --cache-from / --cache-to for one build. Imports load here (manifests
 * and cache configs only); the registry client is opened on first use.
 */
export async function openBuildCache(o: BuildCacheOptions): Promise<BuildCache> {
  let client: Promise<RegistryClient> | undefined;
  const getClient = () => (client ??= openRegistryClient({ insecureRegistries: o.insecureRegistries ?? [] }));
  const imported = o.cacheFrom.length
    ? await CacheImport.load(o.cacheFrom, {
        store: o.store,
        client: getClient,
        platform: o.platform,
        ...(o.onWarning ? { onWarning: o.onWarning } : {}),
        ...(o.onInfo ? { onInfo: o.onInfo } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      })
    : undefined;
  const store = imported ? lazyContentStore(o.store, imported) : o.store;
  const cacheStore = new ImportingCacheStore(o.kilnRoot, imported);
  // mounts=true: watch this root's cache mounts — fill empty ones from the
  // import, remember every one used for the export.
  const usedMounts = new Map<string, CacheMountUse>();
  const exportMounts = o.cacheTo.some((s) => s.type !== 'inline' && s.mounts);
  const unobserve =
    exportMounts || (imported && imported.mounts.size)
      ? observeCacheMounts(o.kilnRoot, async (use) => {
          if (exportMounts && !usedMounts.has(use.id)) usedMounts.set(use.id, use);
          if (use.fresh && imported && (await imported.applyMount(use.id, use.dir))) o.onInfo?.(`cache mount "${use.id}": contents imported`);
        })
      : undefined;
  const inline = o.inline || o.cacheTo.some((s) => s.type === 'inline');
  return {
    store,
    cacheStore,
    imported,
    finishImage: (image, layers) => (inline ? attachInlineCache(store, image, cacheStore.used.values(), layers) : stripInlineCache(store, image)),
    exportCache: (layers) =>
      exportCache(o.cacheTo, {
        store,
        records: cacheStore.used.values(),
        finalLayers: layers,
        client: getClient,
        mounts: usedMounts,
        ...(o.onInfo ? { onInfo: o.onInfo } : {}),
        ...(o.onWarning ? { onWarning: o.onWarning } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      }),
    async close() {
      try {
        if (imported) {
          await cacheStore.keepImported(o.store);
          if (cacheStore.importedHits.size) o.onInfo?.(`cache import: ${cacheStore.importedHits.size} steps reused, ${imported.fetched.length} of ${imported.blobCount} imported blobs fetched`);
        }
      } finally {
        unobserve?.();
        if (client) await (await client).close();
      }
    },
  };
}

/**
 * openBuildCache from build options: parses --cache-from / --cache-to (usage
 * errors first), opens the store under `kilnRoot`, and reports through onEvent.
 * `push`: the image is pushed, so it carries inline cache.
 */
export async function prepareBuildCache(o: {
  cacheFrom?: readonly string[];
  cacheTo?: readonly string[];
  kilnRoot?: string;
  platform?: string;
  insecureRegistries?: string[];
  push: boolean;
  /**
   * --no-cache: nothing is looked up, so only sources with mounts=true are
   * imported, for their cache mounts (the other values are still checked).
   */
  noCache?: boolean;
  onEvent?: (e: BuildEvent) => void;
  signal?: AbortSignal;
}): Promise<BuildCache> {
  const parsedFrom = (o.cacheFrom ?? []).map(parseCacheFrom);
  const cacheFrom = o.noCache ? parsedFrom.filter((s) => s.mounts) : parsedFrom;
  const cacheTo = (o.cacheTo ?? []).map(parseCacheTo);
  const root = o.kilnRoot ?? kilnRoot();
  const emit = o.onEvent;
  return openBuildCache({
    kilnRoot: root,
    store: openContentStore(root),
    cacheFrom,
    cacheTo,
    inline: o.push,
    platform: o.platform ? parsePlatform(o.platform) : hostPlatform(),
    ...(o.insecureRegistries ? { insecureRegistries: o.insecureRegistries } : {}),
    ...(emit ? { onInfo: (m: string) => emit({ type: 'info', message: m, time: Date.now() }) } : {}),
    ...(emit ? { onWarning: (m: string) => emit({ type: 'warning', message: m, time: Date.now() }) } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

/** The engine result with the image `cache.finishImage` made (inline cache), to assign over it. */
export async function finishBuildCache(
  cache: BuildCache,
  engine: InlineImage & { layers: readonly Descriptor[] },
): Promise<InlineImage & { imageId: Digest }> {
  const img = await cache.finishImage(engine, engine.layers);
  return { ...img, imageId: img.config.digest };
}
