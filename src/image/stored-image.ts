import { KilnError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig, Index, Manifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import { hostPlatform, type Platform } from '../oci/platform.js';
import { parseManifestDocument } from './manifest-document.js';
import { selectManifest } from './select-platform.js';

/**
 * What image/ needs from a blob store. content/'s ContentStore satisfies it
 * (image/ sits below content/ and must not import it).
 */
export interface BlobReader {
  read(digest: Digest): Promise<Buffer>;
}
export interface BlobWriter {
  write(data: Buffer, expect?: { digest?: Digest; size?: number; what?: string }): Promise<{ digest: Digest; size: number }>;
}

/** One platform's image as stored: exact bytes plus the parsed documents. */
export interface StoredImage {
  /** Descriptor of the manifest (not of an index that led to it). */
  descriptor: Descriptor;
  rawManifest: Buffer;
  manifest: Manifest;
  rawConfig: Buffer;
  config: ImageConfig;
  /** The layer descriptors, in order (compressed digests). */
  layers: Descriptor[];
  /** Set when `descriptor` was chosen from an index. */
  index?: { descriptor: Descriptor; raw: Buffer; index: Index };
}

/**
 * Read an image whose manifest or index is `desc`. An index is resolved to the
 * entry for `platform` (default: the host's). Every blob read is verified.
 */
export async function readImage(blobs: BlobReader, desc: Descriptor, platform: Platform = hostPlatform()): Promise<StoredImage> {
  const raw = await blobs.read(desc.digest);
  const doc = parseManifestDocument(raw, desc.mediaType);
  if (doc.kind === 'index') {
    const child = selectManifest(doc.index, platform, `index "${desc.digest}"`);
    const img = await readImage(blobs, child, platform);
    if (img.index) throw new KilnError('MANIFEST_INVALID', `Invalid index "${desc.digest}": an index entry for a platform is itself an index`);
    return { ...img, index: { descriptor: desc, raw, index: doc.index } };
  }
  const rawConfig = await blobs.read(doc.manifest.config.digest);
  let config: ImageConfig;
  try {
    config = JSON.parse(rawConfig.toString('utf8')) as ImageConfig;
  } catch (err) {
    throw new KilnError('CONFIG_INVALID', `Invalid image config "${doc.manifest.config.digest}": ${(err as Error).message}`);
  }
  const descriptor: Descriptor = { mediaType: doc.mediaType, digest: desc.digest, size: raw.length };
  if (desc.platform) descriptor.platform = desc.platform;
  return { descriptor, rawManifest: raw, manifest: doc.manifest, rawConfig, config, layers: doc.manifest.layers };
}

export interface WriteImageOptions {
  /** The config as exact bytes (kept) or an object (serialised once, compactly). */
  config: Buffer | ImageConfig;
  layers: Descriptor[];
  /** 'oci' (default) or 'docker' media types for the manifest and config. */
  format?: 'oci' | 'docker';
  annotations?: Record<string, string>;
}

/**
 * Store config and manifest and return the image. Layers must already be in the
 * store (not checked here: the caller streamed them in). The manifest digest is
 * over the exact bytes written.
 */
export async function writeImage(blobs: BlobWriter, opts: WriteImageOptions): Promise<StoredImage> {
  const rawConfig = Buffer.isBuffer(opts.config) ? opts.config : Buffer.from(JSON.stringify(opts.config));
  const config = Buffer.isBuffer(opts.config) ? (JSON.parse(rawConfig.toString('utf8')) as ImageConfig) : opts.config;
  const docker = opts.format === 'docker';
  const cfg = await blobs.write(rawConfig, { what: 'image config' });
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
    config: { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers: opts.layers,
  };
  if (opts.annotations && Object.keys(opts.annotations).length) manifest.annotations = opts.annotations;
  const rawManifest = Buffer.from(JSON.stringify(manifest));
  const m = await blobs.write(rawManifest, { what: 'image manifest' });
  const descriptor: Descriptor = { mediaType: manifest.mediaType!, digest: m.digest, size: m.size };
  descriptor.platform = { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) };
  return { descriptor, rawManifest, manifest, rawConfig, config, layers: opts.layers };
}

/** Store an index over `manifests` (each with its platform) and return its descriptor and bytes. */
export async function writeIndex(blobs: BlobWriter, manifests: Descriptor[], opts: { format?: 'oci' | 'docker'; annotations?: Record<string, string> } = {}): Promise<{ descriptor: Descriptor; raw: Buffer; index: Index }> {
  const mediaType = opts.format === 'docker' ? MediaType.DockerManifestList : MediaType.OciIndex;
  const index: Index = { schemaVersion: 2, mediaType, manifests };
  if (opts.annotations && Object.keys(opts.annotations).length) index.annotations = opts.annotations;
  const raw = Buffer.from(JSON.stringify(index));
  const info = await blobs.write(raw, { what: 'image index' });
  return { descriptor: { mediaType, digest: info.digest, size: info.size }, raw, index };
}
