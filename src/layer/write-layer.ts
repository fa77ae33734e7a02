import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ContentStore } from '../content/types.js';
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
  const tar = layerTar({
    root: options.root,
    changes: options.changes,
    ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
    ...(options.useOverrideStat ? { useOverrideStat: true } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    ...(options.xattrs ? { xattrs: options.xattrs } : {}),
  });
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of tar) {
      diffHash.update(chunk);
      uncompressedSize += chunk.length;
      yield chunk;
    }
  }
  const spec = options.level === undefined ? { compression: options.compression } : { compression: options.compression, level: options.level };
  // A byte-mode stream with a 1 MiB buffer: object mode would buffer 16 chunks ahead.
  const body = Readable.from(compress(hashed(), spec, options.threads), { objectMode: false, highWaterMark: 1024 * 1024 });
  const info = await store.ingest(body, { what: `layer of "${options.root}"` });
  return {
    descriptor: { mediaType: layerMediaType(options.compression, options.oci ?? true), digest: info.digest, size: info.size },
    diffId: `sha256:${diffHash.digest('hex')}` as Digest,
    uncompressedSize,
  };
}
