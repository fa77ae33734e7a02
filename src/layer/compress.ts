import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { UsageError } from '../errors.js';
import type { Compression } from '../oci/media-types.js';
import type { CompressionSpec } from './types.js';

/** Input block of one gzip member. Fixed, so the output depends only on the bytes and the level. */
export const GZIP_BLOCK = 1024 * 1024;
export const DEFAULT_LEVEL: Record<Compression, number | undefined> = { gzip: 6, zstd: 3, none: undefined };
const deflateRawAsync = promisify(zlib.deflateRaw) as DeflateRaw;
/** Piece size of a stream's only block, compressed in-process (see gzipMember). */
export const IN_PROCESS_PIECE = 131072;
// zlib.crc32 is Node ≥ 20.15; gzipMember has a fallback.
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
const LEVELS: Record<'gzip' | 'zstd', [number, number]> = { gzip: [0, 9], zstd: [1, 22] };

/**
 * Parse a `--compression` value: "gzip", "zstd", "uncompressed" (or "none"),
 * optionally followed by ",level=N". Unknown names or keys are refused.
 */
export function parseCompression(value: string): CompressionSpec {
  const [name = '', ...opts] = value.split(',').map((s) => s.trim());
  const compression: Compression | undefined =
    name === 'gzip' ? 'gzip' : name === 'zstd' ? 'zstd' : name === 'uncompressed' || name === 'none' ? 'none' : undefined;
  if (!compression) {
    throw new UsageError(`Invalid compression "${value}": expected gzip, zstd or uncompressed`, { hint: 'Example: --compression zstd,level=3' });
  }
  const spec: CompressionSpec = { compression };
  for (const opt of opts) {
    const eq = opt.indexOf('=');
    const key = eq === -1 ? opt : opt.slice(0, eq);
    const val = eq === -1 ? '' : opt.slice(eq + 1);
    if (key !== 'level') throw new UsageError(`Invalid compression "${value}": unknown option "${key}"`, { hint: 'Only "level=N" is supported.' });
    if (compression === 'none') throw new UsageError(`Invalid compression "${value}": uncompressed layers take no level`);
    const [lo, hi] = LEVELS[compression];
    if (!/^-?\d+$/.test(val) || Number(val) < lo || Number(val) > hi) {
      throw new UsageError(`Invalid compression "${value}": ${compression} level must be an integer from ${lo} to ${hi}`);
    }
    spec.level = Number(val);
  }
  return spec;
}

export type DeflateRaw = (input: Uint8Array, options: { level: number; finishFlush: number; chunkSize: number; dictionary?: Uint8Array }) => Buffer | Promise<Buffer>;

/**
 * One block as one gzip member (RFC 1952), its 16 KiB segments compressed at
 * the level that suits them. A segment whose first and last 4 KiB both have
 * ≥ 7.8 bits of order-0 entropy per byte (compressed, encrypted or random
 * data) is stored (level 0): zlib would spend ~20 ms per MiB on it and emit
 * stored blocks anyway. Runs of segments of one kind are deflated in raw pieces (of
 * at most `piece` bytes), all but the last ending in a sync flush (byte-aligned,
 * not final), so they concatenate into one deflate stream; each piece is primed
 * with the 32 KiB before it, as the decoder's window holds it, so pieces compress
 * independently. The bytes depend only on the block, the level and `piece`:
 * parallelGzip gives a stream's only block 128 KiB pieces, and every block of a
 * longer stream whole runs, so each stream's output is fixed.
 *
 * Self-contained (its source is evaluated in the gzip workers too): zlib's
 * deflateRaw (sync or async: the same bytes at levels ≥ 1) and crc32 (Node ≥
 * 20.15; a table otherwise) come in; stored runs are written here.
 */
export async function gzipMember(block: Uint8Array, level: number, deflateRaw: DeflateRaw, crc32?: (data: Uint8Array) => number, piece = Infinity): Promise<Buffer> {
  const SEGMENT = 16384;
  const SAMPLE = 4096;
  const WINDOW = 32768;
  const SYNC_FLUSH = 2;
  const FINISH = 4;
  const counts = new Uint32Array(256);
  const levels: number[] = [];
  for (let seg = 0; seg < block.length || levels.length === 0; seg += SEGMENT) {
    const end = Math.min(seg + SEGMENT, block.length);
    let random = level > 0 && end - seg >= 2 * SAMPLE;
    // No local functions here: a bundler's helpers (__name) would not exist in the worker.
    for (let from = seg; random && from <= end - SAMPLE; from += end - SAMPLE - seg) {
      counts.fill(0);
      for (let i = from; i < from + SAMPLE; i++) counts[block[i]!]!++;
      let bits = 0;
      for (let k = 0; k < 256; k++) {
        const c = counts[k]!;
        if (c > 0) bits -= (c / SAMPLE) * Math.log2(c / SAMPLE);
      }
      random = bits >= 7.8;
    }
    levels.push(random ? 0 : level);
  }
  // Deflated runs are cut into pieces of at most `piece` bytes, each primed with the 32 KiB
  // before it: with an async deflateRaw they run side by side on libuv's threads (a one-block
  // layer then uses every core). Each piece costs a zlib set-up and a dictionary (+7 % on text,
  // +50 % on very repetitive data), so the workers, already one per core, use whole runs.
  const parts: Array<Buffer | Promise<Buffer>> = [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])];
  for (let i = 0; i < levels.length; ) {
    let j = i + 1;
    while (j < levels.length && levels[j] === levels[i]) j++;
    const start = i * SEGMENT;
    const end = Math.min(j * SEGMENT, block.length);
    const runLevel = levels[i]!;
    const last = j === levels.length;
    if (runLevel === 0) {
      // Stored blocks written here (RFC 1951 §3.2.4: byte-aligned header, LEN, NLEN, bytes):
      // zlib's level 0 output depends on how it is called (sync or async, buffer sizes).
      for (let pos = start; pos < end || (pos === start && start === end); ) {
        const len = Math.min(65535, end - pos);
        const head = Buffer.alloc(5);
        head[0] = last && pos + len === end ? 1 : 0;
        head.writeUInt16LE(len, 1);
        head.writeUInt16LE(~len & 0xffff, 3);
        parts.push(head, Buffer.from(block.buffer, block.byteOffset + pos, len));
        pos += len;
        if (len === 0) break;
      }
    } else {
      for (let pos = start; pos < end || (pos === start && start === end); pos += piece) {
        const stop = Math.min(pos + piece, end);
        const options: Parameters<DeflateRaw>[1] = { level: runLevel, finishFlush: last && stop === end ? FINISH : SYNC_FLUSH, chunkSize: stop - pos + 65536 };
        if (pos > 0) options.dictionary = block.subarray(Math.max(0, pos - WINDOW), pos);
        parts.push(deflateRaw(block.subarray(pos, stop), options));
        if (stop === end) break;
      }
    }
    i = j;
  }
  let crc: number;
  if (crc32) crc = crc32(block) >>> 0;
  else {
    crc = 0xffffffff;
    for (let i = 0; i < block.length; i++) {
      crc ^= block[i]!;
      for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
    }
    crc = (crc ^ 0xffffffff) >>> 0;
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc, 0);
  trailer.writeUInt32LE(block.length >>> 0, 4);
  parts.push(trailer);
  return Buffer.concat(await Promise.all(parts));
}

// Plain JS evaluated as the worker, valid as CommonJS and as an ES module (a
// parent started with --input-type=module makes eval workers ESM), so only
// dynamic import(). The port queues messages until the listener is attached.
const WORKER_SOURCE = `
const gzipMember = (${gzipMember.toString()});
Promise.all([import('node:worker_threads'), import('node:zlib')]).then(([{ parentPort }, zlib]) => {
  parentPort.on('message', async (m) => {
    try {
      const out = await gzipMember(new Uint8Array(m.buf, 0, m.len), m.level, zlib.deflateRawSync, zlib.crc32);
      parentPort.postMessage({ id: m.id, buf: out.buffer, off: out.byteOffset, len: out.length }, [out.buffer]);
    } catch (err) {
      parentPort.postMessage({ id: m.id, error: String((err && err.message) || err) });
    }
  });
  parentPort.postMessage({ ready: true });
});
`;

interface Job {
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

/**
 * A fixed set of worker threads, each compressing whole blocks into one gzip
 * member. Jobs are posted round-robin straight away, so each worker finds its
 * next block already queued in its port even while this thread is busy.
 *
 * One pool per thread count lives for the whole process (starting a worker
 * costs tens of milliseconds, once per layer before). Its workers keep the
 * process alive only while a stream uses them.
 */
class GzipPool {
  private readonly workers: Worker[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private users = 0;
  private readyWorkers = 0;
  private onReady: () => void = () => undefined;
  /** Resolves when every worker has started. */
  readonly whenReady = new Promise<void>((resolve) => (this.onReady = resolve));
  failed: Error | undefined;

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.on('message', (m: { id: number; buf?: ArrayBuffer; off?: number; len?: number; error?: string; ready?: true }) => {
        if (m.ready) {
          if (++this.readyWorkers === this.workers.length) this.onReady();
          return;
        }
        const job = this.jobs.get(m.id);
        this.jobs.delete(m.id);
        if (!job) return;
        if (m.error !== undefined) job.reject(new Error(`gzip worker failed: ${m.error}`));
        else job.resolve(Buffer.from(m.buf!, m.off, m.len));
      });
      w.on('error', (err) => this.fail(err));
      w.unref();
      this.workers.push(w);
    }
  }

  private fail(err: Error): void {
    this.failed = err;
    for (const job of this.jobs.values()) job.reject(err);
    this.jobs.clear();
    for (const w of this.workers) void w.terminate();
  }

  /** A stream starts using the pool: its workers now keep the process alive. */
  acquire(): void {
    if (this.users++ === 0) for (const w of this.workers) w.ref();
  }

  release(): void {
    if (--this.users === 0) for (const w of this.workers) w.unref();
  }

  compress(block: Buffer, level: number): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    const p = new Promise<Buffer>((resolve, reject) => this.jobs.set(id, { resolve, reject }));
    // Transfer, not clone: a block that owns its whole ArrayBuffer goes as is, others are copied once.
    let ab: ArrayBuffer;
    if (block.length >= 65536 && block.byteOffset === 0 && block.byteLength === block.buffer.byteLength && block.buffer instanceof ArrayBuffer) ab = block.buffer;
    else {
      ab = new ArrayBuffer(block.length);
      new Uint8Array(ab).set(block);
    }
    this.workers[id % this.workers.length]!.postMessage({ id, buf: ab, len: block.length, level }, [ab]);
    return p;
  }
}

const pools = new Map<number, GzipPool>();

/**
 * Start the shared gzip workers for `threads` (if not yet) and wait until they run (tests).
 * Builds do not start them ahead of need: measured, the threads' start-up (~50 ms of CPU)
 * slowed the main thread more than the first big layer gained.
 */
export async function startGzipWorkers(threads = availableParallelism()): Promise<void> {
  const pool = sharedPool(Math.max(1, threads));
  pool.acquire(); // an idle pool's workers do not keep the process alive
  try {
    await pool.whenReady;
  } finally {
    pool.release();
  }
}

function sharedPool(size: number): GzipPool {
  let pool = pools.get(size);
  if (!pool || pool.failed) {
    pool = new GzipPool(size);
    pools.set(size, pool);
  }
  return pool;
}

/** Regroup a byte stream into exact `size`-byte blocks (the last may be short). */
async function* blocks(src: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const chunk of src) {
    if (have === 0 && chunk.length === size) {
      yield chunk;
      continue;
    }
    let pos = 0;
    while (pos < chunk.length) {
      const n = Math.min(size - have, chunk.length - pos);
      parts.push(chunk.subarray(pos, pos + n));
      have += n;
      pos += n;
      if (have === size) {
        yield Buffer.concat(parts, have);
        parts = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield Buffer.concat(parts, have);
}

/**
 * The blocks handed to parallelGzip are transferred to worker threads: the
 * caller must not reuse them (layerTar allocates a fresh chunk each time).
 *
 * gzip on every core: the input is cut into GZIP_BLOCK blocks, each compressed
 * into an independent gzip member on a worker thread, members emitted in
 * order. A multi-member stream is valid gzip (RFC 1952 §2.2) and the output is
 * a pure function of input and level. At most 4×threads blocks are in flight (deep enough that workers keep busy while this thread is descheduled),
 * so a slow consumer stops the reading (backpressure).
 *
 * A stream of at most one block (most RUN and COPY layers) is compressed
 * in-process instead, its pieces side by side on libuv's thread pool, without
 * waking the workers. Every member is gzipMember's (random-looking segments stored).
 */
export async function* parallelGzip(src: AsyncIterable<Buffer>, level = 6, threads = availableParallelism()): AsyncGenerator<Buffer> {
  const it = blocks(src, GZIP_BLOCK)[Symbol.asyncIterator]();
  const first = await it.next();
  const second = first.done ? first : await it.next();
  if (second.done) {
    yield await gzipMember(first.done ? Buffer.alloc(0) : first.value, level, deflateRawAsync, zlibCrc32, IN_PROCESS_PIECE);
    return;
  }
  const pool = sharedPool(Math.max(1, threads));
  pool.acquire();
  const inflight: Array<Promise<Buffer>> = [];
  const max = Math.max(2, threads * 4);
  const submit = (block: Buffer): void => {
    const p = pool.compress(block, level);
    p.catch(() => undefined);
    inflight.push(p);
  };
  try {
    submit(first.value!);
    submit(second.value);
    for (let next = await it.next(); !next.done; next = await it.next()) {
      submit(next.value);
      if (inflight.length >= max) yield await inflight.shift()!;
    }
    while (inflight.length > 0) yield await inflight.shift()!;
  } finally {
    pool.release();
    await it.return?.(undefined);
  }
}

/** zstd through zstd-napi in its multi-threaded mode (always ≥ 1 worker: zstd's output then does not depend on the thread count). */
export async function* zstdCompress(src: AsyncIterable<Buffer>, level = 3, threads = availableParallelism()): AsyncGenerator<Buffer> {
  // zstd-napi (a native addon) is loaded on first use, not by every kiln command.
  const { CompressStream } = await import('zstd-napi');
  const z = new CompressStream({ compressionLevel: level, nbWorkers: Math.max(1, threads), checksumFlag: true });
  const feeding = pipeline(Readable.from(src, { objectMode: false }), z);
  feeding.catch((err: Error) => z.destroy(err));
  try {
    for await (const chunk of z) yield chunk as Buffer;
    await feeding;
  } finally {
    if (!z.destroyed) z.destroy();
  }
}

/** Compress a byte stream with the given spec ('none' passes it through). */
export function compress(src: AsyncIterable<Buffer>, spec: CompressionSpec, threads?: number): AsyncIterable<Buffer> {
  const level = spec.level ?? DEFAULT_LEVEL[spec.compression];
  if (spec.compression === 'gzip') return parallelGzip(src, level, threads);
  if (spec.compression === 'zstd') return zstdCompress(src, level, threads);
  return src;
}
