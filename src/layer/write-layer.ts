import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ContentStore } from '../content/types.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { layerMediaType } from '../oci/media-types.js';
import { compress } from './compress.js';
import { layerTar } from './diff.js';
import type { LayerResult, WriteLayerOptions } from './types.js';

/**
 * See WriteLayer in ./types.ts. One pass: the tar generator's chunks are
 * hashed (diffId) as they go to the compressor; the store hashes the
 * compressed bytes (digest) while writing them. Pulled from the store's end,
 * so every stage waits for the next one (backpressure end to end).
 */
export async function writeLayer(store: ContentStore, options: WriteLayerOptions): Promise<LayerResult> {
  const diffHash = createHash('sha256');
  let uncompressedSize = 0;
  const tar = tarOf(options);
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of tar) {
      diffHash.update(chunk);
      uncompressedSize += chunk.length;
      yield chunk;
    }
  }
  const info = await compressInto(store, hashed(), options);
  return {
    descriptor: { mediaType: layerMediaType(options.compression, options.oci ?? true), digest: info.digest, size: info.size },
    diffId: `sha256:${diffHash.digest('hex')}` as Digest,
    uncompressedSize,
  };
}

/** A layer whose tar is made and hashed: its diffId is known, its compressed blob may come later. */
export interface DeferredLayer {
  diffId: Digest;
  uncompressedSize: number;
  mediaType: string;
  /**
   * The blob's descriptor when it is already in the store (a layer over the limit), else a
   * promise that resolves once it is (and rejects if writing it fails).
   */
  descriptor: Descriptor | Promise<Descriptor>;
}

/**
 * writeLayer in two halves for small layers: the tar is made in memory and hashed now (a
 * snapshot can be committed under its chain id at once), and compressed into the store in the
 * background, beside whatever runs next. A tar that passes `maxBuffered` bytes is not made
 * twice: what was buffered, then the rest, goes through the compressor now, as in writeLayer.
 * Either way the blob is the one writeLayer would write.
 */
export async function writeLayerDeferred(store: ContentStore, options: WriteLayerOptions, maxBuffered: number): Promise<DeferredLayer> {
  const diffHash = createHash('sha256');
  const chunks: Buffer[] = [];
  let size = 0;
  const tar = tarOf(options);
  const mediaType = layerMediaType(options.compression, options.oci ?? true);
  let next = await tar.next();
  while (!next.done && size + next.value.length <= maxBuffered) {
    size += next.value.length;
    diffHash.update(next.value); // the tar writer hands out a fresh buffer per chunk: keeping them is safe
    chunks.push(next.value);
    next = await tar.next();
  }
  if (next.done) {
    const descriptor = compressInto(store, (async function* () {
      yield* chunks.splice(0);
    })(), options).then((info) => ({ mediaType, digest: info.digest, size: info.size }));
    return { diffId: `sha256:${diffHash.digest('hex')}` as Digest, uncompressedSize: size, mediaType, descriptor };
  }
  async function* rest(): AsyncGenerator<Buffer> {
    yield* chunks.splice(0);
    for (let r = next; !r.done; r = await tar.next()) {
      diffHash.update(r.value);
      size += r.value.length;
      yield r.value;
    }
  }
  const info = await compressInto(store, rest(), options);
  return { diffId: `sha256:${diffHash.digest('hex')}` as Digest, uncompressedSize: size, mediaType, descriptor: { mediaType, digest: info.digest, size: info.size } };
}

function tarOf(options: WriteLayerOptions): AsyncGenerator<Buffer> {
  return layerTar({
    root: options.root,
    changes: options.changes,
    ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
    ...(options.useOverrideStat ? { useOverrideStat: true } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    ...(options.xattrs ? { xattrs: options.xattrs } : {}),
  });
}

function compressInto(store: ContentStore, tar: AsyncIterable<Buffer>, options: WriteLayerOptions): Promise<{ digest: Digest; size: number }> {
  const spec = options.level === undefined ? { compression: options.compression } : { compression: options.compression, level: options.level };
  // A byte-mode stream with a 1 MiB buffer: object mode would buffer 16 chunks ahead.
  const body = Readable.from(compress(tar, spec, options.threads), { objectMode: false, highWaterMark: 1024 * 1024 });
  return store.ingest(body, { what: `layer of "${options.root}"` });
}
