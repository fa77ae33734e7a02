import { existsSync } from 'node:fs';
import { resolve as resolvePath, join } from 'node:path';
import { openContentStore } from '../content/oci-layout-store.js';
import type { ContentStore } from '../content/types.js';
import { KilnError } from '../errors.js';
import { parseManifestDocument } from '../image/manifest-document.js';
import { selectManifest } from '../image/select-platform.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import type { Platform } from '../oci/platform.js';
import { parseDockerRef } from '../oci/reference.js';
import { fetchBlob, mapLimit, type RegistryClient } from '../registry/index.js';
import { firstEndpoint } from '../registry/resolve-reference.js';
import { applyLayer } from '../layer/apply.js';
import { INLINE_CACHE_FIELD, cacheMountLayers, decodeCacheDocument } from './cache-manifest.js';
import type { CacheFromSpec } from './cache-spec.js';
import { CacheStore, type CacheRecord } from './cache-store.js';

/** Tag of the cache manifest in a `type=local` cache directory (an OCI layout). */
export const LOCAL_CACHE_TAG = 'latest';

/** Where imported blobs come from: fetches one blob into `store` (verified). */
interface BlobSource {
  name: string;
  fetch(desc: Descriptor, store: ContentStore): Promise<void>;
}

export interface CacheImportOptions {
  /** The real (local) store: cache metadata and fetched blobs land here. */
  store: ContentStore;
  /** A registry client (opened once, on first use; the caller closes it). */
  client: () => Promise<RegistryClient>;
  platform: Platform;
  onWarning?: (message: string) => void;
  onInfo?: (message: string) => void;
  signal?: AbortSignal;
}

/**
 * Records imported with --cache-from, and where each of their blobs can be
 * fetched. Loading reads only manifests and cache configs; blobs are fetched
 * by `fetch` when something needs their bytes (see lazyContentStore).
 * A source that cannot be read is a warning, as in BuildKit: the build goes on.
 */
export class CacheImport {
  readonly records = new Map<string, CacheRecord>();
  private readonly blobs = new Map<Digest, { desc: Descriptor; source: BlobSource }>();
  private readonly fetching = new Map<Digest, Promise<boolean>>();
  /** Blobs fetched so far (for tests and progress). */
  readonly fetched: Digest[] = [];
  /** Cache mount id → layer of its exported contents (sources with mounts=true only). */
  readonly mounts = new Map<string, Descriptor>();

  private constructor(private readonly opts: CacheImportOptions) {}

  static async load(specs: readonly CacheFromSpec[], opts: CacheImportOptions): Promise<CacheImport> {
    const imp = new CacheImport(opts);
    // Sources load in parallel; on a key both know, the one named first wins.
    const loaded = await Promise.all(specs.map((s) => imp.loadOne(s)));
    for (const [i, l] of loaded.entries()) {
      if (!l) continue;
      if (specs[i]!.mounts) {
        for (const [id, desc] of l.mounts) {
          if (imp.mounts.has(id)) continue;
          imp.mounts.set(id, desc);
          if (!imp.blobs.has(desc.digest)) imp.blobs.set(desc.digest, { desc, source: l.source });
        }
      }
      for (const r of l.records) {
        if (!imp.records.has(r.key)) imp.records.set(r.key, r);
        for (const layer of r.state.layers) {
          if (!imp.blobs.has(layer.descriptor.digest)) imp.blobs.set(layer.descriptor.digest, { desc: layer.descriptor, source: l.source });
        }
      }
      opts.onInfo?.(`importing cache from ${l.source.name}: ${l.records.length} records${specs[i]!.mounts ? `, ${l.mounts.size} cache mounts` : ''}`);
    }
    return imp;
  }

  private async loadOne(spec: CacheFromSpec): Promise<Loaded | undefined> {
    const name = spec.type === 'registry' ? `"${spec.ref}"` : `local directory "${spec.src}"`;
    try {
      return spec.type === 'registry' ? await this.loadRegistry(spec.ref) : await this.loadLocal(spec.src);
    } catch (err) {
      if (this.opts.signal?.aborted) throw err;
      const why = err instanceof KilnError ? err.message : String(err);
      this.opts.onWarning?.(`Cannot import build cache from ${name}: ${why}`);
      return undefined;
    }
  }

  private async loadRegistry(refText: string): Promise<Loaded> {
    const ref = parseDockerRef(refText);
    const client = await this.opts.client();
    const { store, signal } = this.opts;
    return firstEndpoint(client.endpoints(ref), async (ep) => {
      const top = await client.getManifest(ep, ref.manifestReference, signal);
      let doc = parseManifestDocument(top.raw, top.descriptor.mediaType);
      if (doc.kind === 'index') {
        const child = selectManifest(doc.index, this.opts.platform, `"${ref}"`);
        doc = parseManifestDocument((await client.getManifest(ep, child.digest, signal)).raw, child.mediaType);
      }
      if (doc.kind !== 'manifest') throw new KilnError('CACHE_INVALID', `"${ref}" is an index of indexes`);
      const cfg = doc.manifest.config;
      await fetchBlob(client, ep, cfg, store, { what: `cache config of "${ref}"`, ...(signal ? { signal } : {}) });
      const records = decodeCacheDocument(cacheValue(await store.read(cfg.digest), cfg, `"${ref}"`), `"${ref}"`);
      const source: BlobSource = {
        name: `"${ref}"`,
        fetch: async (desc, into) => {
          await fetchBlob(client, ep, desc, into, { what: `cached layer "${desc.digest}" of "${ref}"`, ...(signal ? { signal } : {}) });
        },
      };
      return { records, source, mounts: cacheMountLayers(doc.manifest.layers) };
    }, client.log);
  }

  private async loadLocal(src: string): Promise<Loaded> {
    const dir = resolvePath(src);
    if (!existsSync(join(dir, 'index.json'))) throw new KilnError('CACHE_NOT_FOUND', `"${dir}" is not an OCI layout (no index.json)`);
    const layout = openContentStore(dir);
    const desc = await layout.getTag(LOCAL_CACHE_TAG);
    if (!desc) throw new KilnError('CACHE_NOT_FOUND', `"${dir}" holds no cache manifest tagged "${LOCAL_CACHE_TAG}"`);
    const doc = parseManifestDocument(await layout.read(desc.digest), desc.mediaType);
    if (doc.kind !== 'manifest') throw new KilnError('CACHE_INVALID', `the "${LOCAL_CACHE_TAG}" entry of "${dir}" is not a manifest`);
    const cfg = doc.manifest.config;
    const records = decodeCacheDocument(cacheValue(await layout.read(cfg.digest), cfg, `"${dir}"`), `"${dir}"`);
    const source: BlobSource = {
      name: `local directory "${dir}"`,
      fetch: async (d, into) => {
        await into.ingest(await layout.open(d.digest), { digest: d.digest, size: d.size, what: `cached layer "${d.digest}" of "${dir}"` });
      },
    };
    return { records, source, mounts: cacheMountLayers(doc.manifest.layers) };
  }

  /**
   * Fill `dir` with the imported contents of cache mount `id` (fetched,
   * verified, applied path-safely). Returns false when no source with
   * mounts=true carries that id. The caller holds the mount's lock.
   */
  async applyMount(id: string, dir: string): Promise<boolean> {
    const desc = this.mounts.get(id);
    if (!desc) return false;
    await this.fetch(desc.digest);
    const o: { mediaType: string; onWarning?: (m: string) => void } = { mediaType: desc.mediaType };
    if (this.opts.onWarning) o.onWarning = this.opts.onWarning;
    await applyLayer({ store: this.opts.store, digest: desc.digest, size: desc.size }, dir, o);
    return true;
  }

  /** How many distinct blobs the imported records use. */
  get blobCount(): number {
    return this.blobs.size;
  }

  /** Whether an imported record uses this blob. */
  knows(digest: Digest): boolean {
    return this.blobs.has(digest);
  }

  /**
   * Fetch an imported blob into the store unless it is there. Returns false
   * for a digest no imported record uses. Concurrent calls share one fetch.
   */
  fetch(digest: Digest): Promise<boolean> {
    const b = this.blobs.get(digest);
    if (!b) return Promise.resolve(false);
    let p = this.fetching.get(digest);
    if (!p) {
      p = (async () => {
        if (await this.opts.store.stat(digest)) return true;
        await b.source.fetch(b.desc, this.opts.store);
        this.fetched.push(digest);
        return true;
      })();
      this.fetching.set(digest, p);
      p.catch(() => this.fetching.delete(digest));
    }
    return p;
  }
}

/** One loaded source: its records, where its blobs come from, and its cache mount layers by id. */
interface Loaded {
  records: CacheRecord[];
  source: BlobSource;
  mounts: Map<string, Descriptor>;
}

/** The CacheDocument of a cache config blob, or of an image config's inline field. */
function cacheValue(raw: Buffer, cfg: Descriptor, where: string): unknown {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new KilnError('CACHE_INVALID', `the config of ${where} is not JSON (${(err as Error).message})`);
  }
  if (cfg.mediaType === MediaType.KilnCacheConfig) return value;
  if (cfg.mediaType === MediaType.OciConfig || cfg.mediaType === MediaType.DockerConfig) {
    const inline = value[INLINE_CACHE_FIELD];
    if (inline === undefined) throw new KilnError('CACHE_NOT_FOUND', `the image ${where} carries no kiln inline cache`);
    return inline;
  }
  throw new KilnError('CACHE_INVALID', `${where} is neither a kiln cache manifest nor an image (config media type "${cfg.mediaType}")`);
}

/**
 * The local instruction cache plus imported records (looked up after the
 * local ones). Remembers every record this build used or wrote, for export.
 */
export class ImportingCacheStore extends CacheStore {
  /** key → record, for every step of this build that hit or was stored. */
  readonly used = new Map<string, CacheRecord>();
  /** Keys of `used` that came from an import. */
  readonly importedHits = new Set<string>();

  constructor(
    kilnRoot: string,
    private readonly imported?: CacheImport,
  ) {
    super(kilnRoot);
  }

  override async get(key: string): Promise<CacheRecord | undefined> {
    const local = await super.get(key);
    if (local) {
      this.used.set(key, local);
      return local;
    }
    const r = this.imported?.records.get(key);
    if (!r) return undefined;
    this.used.set(key, r);
    this.importedHits.add(key);
    return JSON.parse(JSON.stringify(r)) as CacheRecord;
  }

  override async put(record: CacheRecord): Promise<void> {
    await super.put(record);
    // A copy: the engine keeps changing the state object it passed in.
    this.used.set(record.key, JSON.parse(JSON.stringify(record)) as CacheRecord);
  }

  /**
   * Keep imported records that were used and whose blobs are now all in the
   * store as local records, so the next build hits without --cache-from.
   */
  async keepImported(store: ContentStore): Promise<void> {
    for (const key of this.importedHits) {
      const r = this.used.get(key)!;
      const present = await Promise.all(r.state.layers.map((l) => store.stat(l.descriptor.digest)));
      if (present.every(Boolean)) await super.put(r);
    }
  }
}

/**
 * `store` seen through the import: a blob an imported record uses is fetched
 * the first time someone needs it (stat, open, read), and tagging an image
 * first fetches whatever of it is missing, so a tag never points at absent
 * blobs. Everything else goes straight to `store`.
 */
export function lazyContentStore(store: ContentStore, imported: CacheImport): ContentStore {
  const ensure = async (d: Digest): Promise<void> => {
    if (imported.knows(d) && !(await store.stat(d))) await imported.fetch(d);
  };
  const ensureImage = async (desc: Descriptor): Promise<void> => {
    const doc = parseManifestDocument(await store.read(desc.digest), desc.mediaType);
    if (doc.kind === 'index') {
      for (const m of doc.index.manifests) if (await store.stat(m.digest)) await ensureImage(m);
      return;
    }
    await mapLimit([doc.manifest.config, ...doc.manifest.layers], 3, (b) => ensure(b.digest));
  };
  const overrides: Partial<ContentStore> = {
    async stat(d) {
      await ensure(d);
      return store.stat(d);
    },
    async open(d) {
      await ensure(d);
      return store.open(d);
    },
    async read(d) {
      await ensure(d);
      return store.read(d);
    },
    async setTag(name, desc) {
      await ensureImage(desc);
      return store.setTag(name, desc);
    },
  };
  return new Proxy(store, {
    get(target, prop) {
      if (typeof prop === 'string' && prop in overrides) return overrides[prop as keyof ContentStore];
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
