import { KilnError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, parseDigest } from '../oci/digest.js';
import type { ContainerConfig, HistoryEntry, ImageConfig, Manifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import type { CacheKeyParts } from './cache-key.js';
import type { CacheMode } from './cache-spec.js';
import type { CacheRecord } from './cache-store.js';
import type { LayerRef } from './image-state.js';

/**
 * The field of an image config that carries inline cache (as BuildKit's
 * "moby.buildkit.cache.v0"). Its value is a CacheDocument.
 */
export const INLINE_CACHE_FIELD = 'kiln.cache.v1';

/**
 * kiln's exported build cache, the config blob of a cache manifest
 * (media type MediaType.KilnCacheConfig) and the value of the inline field.
 * Layers are listed once; each record names its state's layers by index.
 *
 *   { "version": 1,
 *     "layers":  [ { "descriptor": {…}, "diffId": "sha256:…" }, … ],
 *     "records": [ { "key": "sha256:…", "parts": {…}, "layers": [0], "config": {…} },
 *                  { "key": "sha256:…", "parts": {…}, "layers": [0, 3],
 *                    "delta": { "from": 0, "history": [ … ], "config": {…} } }, … ] }
 *
 * A record is the result of one step: the image config after it and the
 * layer stack it produced. A config is stored whole, or as a delta on an
 * earlier record's: the history entries appended and, when it changed, the
 * container config ("config" field); rootfs always follows from the layers.
 * Per-file source digests are dropped from the parts (they only serve the
 * local --explain, and can be large).
 */
export interface CacheDocument {
  version: 1;
  layers: LayerRef[];
  records: EncodedRecord[];
}

export interface EncodedRecord {
  key: string;
  parts: CacheKeyParts;
  layers: number[];
  config?: ImageConfig;
  delta?: { from: number; history: HistoryEntry[]; config?: ContainerConfig };
}

/** Records of `records` an export of `mode` carries. min: those whose layers are a prefix of the final image's. */
export function selectRecords(records: Iterable<CacheRecord>, mode: CacheMode, finalLayers: readonly Descriptor[]): CacheRecord[] {
  const out: CacheRecord[] = [];
  const seen = new Set<string>();
  for (const r of records) {
    if (seen.has(r.key)) continue;
    if (mode === 'min') {
      const l = r.state.layers;
      if (l.length > finalLayers.length || l.some((x, i) => x.descriptor.digest !== finalLayers[i]!.digest)) continue;
    }
    seen.add(r.key);
    out.push(r);
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * What a delta keeps from its base: the key order and every top-level field
 * but history, config and rootfs (whose values a delta may change).
 */
function configFrame(c: ImageConfig): string {
  const { history: _h, config: _c, rootfs: _r, ...rest } = c;
  return JSON.stringify([Object.keys(c), rest]);
}

/**
 * Encode records. Deterministic for the same input: records ordered by
 * history length then key, so a delta's base always comes first; layers in
 * first-use order.
 */
export function encodeCacheDocument(records: readonly CacheRecord[]): CacheDocument {
  const layers: LayerRef[] = [];
  const index = new Map<string, number>();
  const out: EncodedRecord[] = [];
  const strip = (c: ImageConfig): ImageConfig => {
    // A base image's own inline cache is not part of this build's state.
    const { [INLINE_CACHE_FIELD]: _inherited, ...config } = c as ImageConfig & Record<string, unknown>;
    return config as ImageConfig;
  };
  const ordered = [...records]
    .map((r) => ({ r, config: strip(r.state.config) }))
    .sort((a, b) => (a.config.history?.length ?? 0) - (b.config.history?.length ?? 0) || (a.r.key < b.r.key ? -1 : a.r.key > b.r.key ? 1 : 0));
  const done: Array<{ config: ImageConfig; frame: string; history: string[] }> = [];
  for (const { r, config } of ordered) {
    const refs = r.state.layers.map((l) => {
      let i = index.get(l.descriptor.digest);
      if (i === undefined) {
        i = layers.length;
        index.set(l.descriptor.digest, i);
        const d: Descriptor = { mediaType: l.descriptor.mediaType, digest: l.descriptor.digest, size: l.descriptor.size };
        layers.push({ descriptor: d, diffId: l.diffId });
      }
      return i;
    });
    const parts: CacheKeyParts = { ...r.parts };
    if (parts.sources) parts.sources = { digest: parts.sources.digest, files: {} };
    const history = (config.history ?? []).map((h) => JSON.stringify(h));
    const frame = configFrame(config);
    // Base: the latest earlier record with the same frame whose history prefixes this one's.
    let from = -1;
    for (let i = done.length - 1; i >= 0 && from === -1; i--) {
      const d = done[i]!;
      if (d.frame === frame && d.history.length <= history.length && d.history.every((h, j) => h === history[j])) from = i;
    }
    const enc: EncodedRecord = { key: r.key, parts, layers: refs };
    if (from === -1) enc.config = config;
    else {
      const base = done[from]!;
      enc.delta = { from, history: (config.history ?? []).slice(base.history.length) };
      if (config.config !== undefined && JSON.stringify(base.config.config) !== JSON.stringify(config.config)) enc.delta.config = config.config;
    }
    done.push({ config, frame, history });
    out.push(enc);
  }
  return { version: 1, layers, records: out };
}

function invalid(where: string, why: string): KilnError {
  return new KilnError('CACHE_INVALID', `Cannot import build cache from ${where}: ${why}`, {
    hint: 'Export the cache again with a current kiln (--cache-to), or drop this --cache-from.',
  });
}

/** Decode and check a CacheDocument (untrusted input: every field is checked). */
export function decodeCacheDocument(value: unknown, where: string): CacheRecord[] {
  const doc = value as CacheDocument;
  if (!doc || typeof doc !== 'object') throw invalid(where, 'not a JSON object');
  if (doc.version !== 1) throw invalid(where, `unknown cache format version ${JSON.stringify(doc.version)}`);
  if (!Array.isArray(doc.layers) || !Array.isArray(doc.records)) throw invalid(where, 'no "layers" or "records" array');
  const layers: LayerRef[] = doc.layers.map((l, i) => {
    const d = l?.descriptor;
    if (!d || typeof d.mediaType !== 'string' || typeof d.size !== 'number' || !(d.size >= 0)) throw invalid(where, `layer ${i} has no valid descriptor`);
    try {
      parseDigest(d.digest);
      parseDigest(l.diffId);
    } catch {
      throw invalid(where, `layer ${i} has a malformed digest`);
    }
    return { descriptor: { mediaType: d.mediaType, digest: d.digest as Digest, size: d.size }, diffId: l.diffId };
  });
  const configs: ImageConfig[] = [];
  return doc.records.map((r, i) => {
    if (!r || typeof r.key !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(r.key)) throw invalid(where, `record ${i} has no valid key`);
    if (!Array.isArray(r.layers) || !r.layers.every((n) => Number.isInteger(n) && n >= 0 && n < layers.length)) throw invalid(where, `record ${i} names a layer that is not listed`);
    if (!r.parts || typeof r.parts !== 'object') throw invalid(where, `record ${i} has no config or parts`);
    let config: ImageConfig;
    if (r.config && typeof r.config === 'object' && r.delta === undefined) config = r.config;
    else if (r.config === undefined && r.delta && typeof r.delta === 'object') {
      const { from, history, config: cc } = r.delta;
      if (!Number.isInteger(from) || from < 0 || from >= i) throw invalid(where, `record ${i}'s delta is based on record ${JSON.stringify(from)}, not an earlier one`);
      if (!Array.isArray(history) || (cc !== undefined && (cc === null || typeof cc !== 'object'))) throw invalid(where, `record ${i} has a malformed delta`);
      const base = JSON.parse(JSON.stringify(configs[from])) as ImageConfig;
      config = { ...base, history: [...(base.history ?? []), ...history] };
      if (cc !== undefined) config.config = cc;
      config.rootfs = { type: 'layers', diff_ids: r.layers.map((n) => layers[n]!.diffId) };
    } else throw invalid(where, `record ${i} has no config or parts`);
    configs.push(config);
    const state = { config: JSON.parse(JSON.stringify(config)) as ImageConfig, layers: r.layers.map((n) => ({ ...layers[n]!, descriptor: { ...layers[n]!.descriptor } })) };
    const diffIds = state.layers.map((l) => l.diffId);
    const rootfs = state.config.rootfs?.diff_ids ?? [];
    if (rootfs.length !== diffIds.length || rootfs.some((d, j) => d !== diffIds[j])) throw invalid(where, `record ${i}'s config does not match its layers`);
    return { key: r.key, parts: r.parts, state };
  });
}

/**
 * Annotation of a cache manifest layer holding the contents of a RUN
 * --mount=type=cache (exported with mounts=true): the mount's cache id.
 * Such layers come after the CacheDocument's, which never carry it.
 */
export const CACHE_MOUNT_ID_ANNOTATION = 'dev.kiln.cache-mount.id';

/**
 * The cache manifest: an OCI image manifest whose config is the CacheDocument
 * and whose layers are its blobs, then `mountLayers` (cache mount contents,
 * each annotated with CACHE_MOUNT_ID_ANNOTATION).
 */
export function cacheManifest(config: Descriptor, doc: CacheDocument, mountLayers: readonly Descriptor[] = []): Manifest {
  return {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.KilnCacheConfig, digest: config.digest, size: config.size },
    layers: [...doc.layers.map((l) => ({ mediaType: l.descriptor.mediaType, digest: l.descriptor.digest, size: l.descriptor.size })), ...mountLayers],
  };
}

/** id → layer of the cache mount layers of a cache manifest (the first layer of an id wins). */
export function cacheMountLayers(layers: readonly Descriptor[]): Map<string, Descriptor> {
  const out = new Map<string, Descriptor>();
  for (const l of layers) {
    const id = l.annotations?.[CACHE_MOUNT_ID_ANNOTATION];
    if (typeof id === 'string' && id !== '' && !out.has(id)) out.set(id, { mediaType: l.mediaType, digest: l.digest, size: l.size });
  }
  return out;
}
