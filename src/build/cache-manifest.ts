import { KilnError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, parseDigest } from '../oci/digest.js';
import type { ImageConfig, Manifest } from '../oci/manifest.js';
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
 *     "records": [ { "key": "sha256:…", "parts": {…}, "layers": [0, 3], "config": {…} }, … ] }
 *
 * A record is the result of one step: the image config after it and the
 * layer stack it produced. Per-file source digests are dropped from the
 * parts (they only serve the local --explain, and can be large).
 */
export interface CacheDocument {
  version: 1;
  layers: LayerRef[];
  records: Array<{ key: string; parts: CacheKeyParts; layers: number[]; config: ImageConfig }>;
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

/** Encode records (deterministic for the same input: sorted by key, layers in first-use order). */
export function encodeCacheDocument(records: readonly CacheRecord[]): CacheDocument {
  const layers: LayerRef[] = [];
  const index = new Map<string, number>();
  const out: CacheDocument['records'] = [];
  for (const r of [...records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
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
    // A base image's own inline cache is not part of this build's state.
    const { [INLINE_CACHE_FIELD]: _inherited, ...config } = r.state.config as ImageConfig & Record<string, unknown>;
    out.push({ key: r.key, parts, layers: refs, config: config as ImageConfig });
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
  return doc.records.map((r, i) => {
    if (!r || typeof r.key !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(r.key)) throw invalid(where, `record ${i} has no valid key`);
    if (!Array.isArray(r.layers) || !r.layers.every((n) => Number.isInteger(n) && n >= 0 && n < layers.length)) throw invalid(where, `record ${i} names a layer that is not listed`);
    if (!r.config || typeof r.config !== 'object' || !r.parts || typeof r.parts !== 'object') throw invalid(where, `record ${i} has no config or parts`);
    const state = { config: r.config, layers: r.layers.map((n) => ({ ...layers[n]!, descriptor: { ...layers[n]!.descriptor } })) };
    const diffIds = state.layers.map((l) => l.diffId);
    const rootfs = state.config.rootfs?.diff_ids ?? [];
    if (rootfs.length !== diffIds.length || rootfs.some((d, j) => d !== diffIds[j])) throw invalid(where, `record ${i}'s config does not match its layers`);
    return { key: r.key, parts: r.parts, state };
  });
}

/** The cache manifest: an OCI image manifest whose config is the CacheDocument and whose layers are its blobs. */
export function cacheManifest(config: Descriptor, doc: CacheDocument): Manifest {
  return {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.KilnCacheConfig, digest: config.digest, size: config.size },
    layers: doc.layers.map((l) => ({ mediaType: l.descriptor.mediaType, digest: l.descriptor.digest, size: l.descriptor.size })),
  };
}
