import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Compression } from '../oci/media-types.js';

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** Compression named by the first bytes of a blob ('none' when neither gzip nor zstd). */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) return 'gzip';
  if (head.length >= 4 && ZSTD_MAGIC.every((b, i) => head[i] === b)) return 'zstd';
  return 'none';
}

/**
 * The uncompressed bytes of `src`. Magic bytes decide (a media type can lie;
 * registries hold uncompressed layers labelled gzip). Iterating to the end
 * verifies the compressor's trailer; an early return destroys `src`.
 */
export async function decompressed(src: Readable): Promise<{ compression: Compression; stream: AsyncIterable<Buffer> }> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  while (head.length < 4) {
    const r = await it.next();
    if (r.done) break;
    head = Buffer.concat([head, r.value]);
  }
  const compression = detectCompression(head);
  async function* whole(): AsyncGenerator<Buffer> {
    try {
      if (head.length > 0) yield head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      if (!src.readableEnded) src.destroy();
    }
  }
  if (compression === 'none') return { compression, stream: whole() };
  // zstd-napi (a native addon) is loaded on first use: most builds never meet a zstd layer.
  const dec = compression === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : new (await import('zstd-napi')).DecompressStream();
  const done = pipeline(Readable.from(whole(), { objectMode: false }), dec);
  done.catch(() => undefined); // errors surface through iterating `dec`
  return { compression, stream: dec };
}
