import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { crc32, deflateRaw, deflateRawSync, gunzipSync, gzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'zstd-napi';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GZIP_BLOCK, gzipMember, IN_PROCESS_PIECE, parallelGzip, startGzipWorkers, zstdCompress, type DeflateRaw } from '../../../src/layer/compress.js';
import { detectCompression } from '../../../src/layer/decompress.js';

const test = suite('layer: compress');

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

/** Chunks of awkward sizes, each a fresh buffer (the pool may take ownership). */
function* chunks(data: Buffer, sizes: number[]): Generator<Buffer> {
  let pos = 0;
  for (let i = 0; pos < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield Buffer.from(data.subarray(pos, pos + n));
    pos += n;
  }
}

async function* from(gen: Iterable<Buffer>): AsyncGenerator<Buffer> {
  yield* gen;
}

test('parallel gzip: one member per block, valid multi-member gzip, same bytes however the input is chunked or threaded', async () => {
  const data = Buffer.concat([randomBytes(GZIP_BLOCK + 1000), Buffer.alloc(GZIP_BLOCK * 2, 'abc')]);
  const a = await collect(parallelGzip(from(chunks(data, [GZIP_BLOCK])), 6, 1));
  const b = await collect(parallelGzip(from(chunks(data, [1, 70000, 333333])), 6, 3));
  assert.ok(a.equals(b));
  assert.ok(gunzipSync(a).equals(data));
  let members = 0;
  for (let i = 0; i + 3 < a.length; i++) if (a[i] === 0x1f && a[i + 1] === 0x8b && a[i + 2] === 8 && a[i + 3] === 0) members++;
  assert.ok(members >= 4, `expected ≥ 4 gzip members (one per block), saw ${members}`);
  assert.is(detectCompression(a), 'gzip');
});

test('parallel gzip of nothing is a valid empty gzip stream', async () => {
  const out = await collect(parallelGzip(from([]), 6, 2));
  assert.is(gunzipSync(out).length, 0);
});

test('a stream of one block is one member in 128 KiB pieces; a longer stream, members of whole runs', async () => {
  const block = Buffer.concat([randomBytes(1000), Buffer.alloc(GZIP_BLOCK - 1000, 'q')]);
  const alone = await collect(parallelGzip(from([Buffer.from(block)]), 6, 2));
  const pooled = await collect(parallelGzip(from([Buffer.from(block), Buffer.from('tail')]), 6, 2));
  assert.ok(alone.equals(await gzipMember(block, 6, deflateRawSync, crc32, IN_PROCESS_PIECE)));
  const first = await gzipMember(block, 6, deflateRawSync, crc32);
  assert.ok(pooled.subarray(0, first.length).equals(first), 'the first member of the pooled stream');
  assert.ok(gunzipSync(alone).equals(block));
  assert.ok(gunzipSync(pooled).equals(Buffer.concat([block, Buffer.from('tail')])));
});

/** Alternating files of text and random bytes, as in a layer of assets. */
function mixedBlock(fileSize: number, total: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0, n = 0; n < total; i++, n += fileSize) parts.push(i % 2 === 0 ? Buffer.from(`asset ${i} line\n`.repeat(fileSize / 8)).subarray(0, fileSize) : randomBytes(fileSize));
  return Buffer.concat(parts).subarray(0, total);
}

test('gzipMember: random segments stored, text deflated, one valid member that gzip(1) reads, the same bytes sync or async', async () => {
  const block = mixedBlock(100 * 1024, GZIP_BLOCK);
  const viaSync = await gzipMember(block, 6, deflateRawSync, crc32);
  const viaAsync = await gzipMember(block, 6, promisify(deflateRaw) as DeflateRaw, crc32);
  const tableCrc = await gzipMember(block, 6, deflateRawSync);
  assert.ok(viaSync.equals(viaAsync) && viaSync.equals(tableCrc));
  const piecesSync = await gzipMember(block, 6, deflateRawSync, crc32, IN_PROCESS_PIECE);
  assert.ok(piecesSync.equals(await gzipMember(block, 6, promisify(deflateRaw) as DeflateRaw, crc32, IN_PROCESS_PIECE)), 'in pieces: the same bytes sync or async');
  assert.ok(gunzipSync(piecesSync).equals(block));
  assert.ok(gunzipSync(viaSync).equals(block));
  const cli = spawnSync('gzip', ['-dc'], { input: viaSync, maxBuffer: 4 * GZIP_BLOCK });
  assert.is(cli.status, 0, String(cli.stderr));
  assert.ok(cli.stdout.equals(block));
  // About half the block is random: it may not grow beyond what zlib alone makes of the block.
  const zlibSize = gzipSync(block, { level: 6 }).length;
  assert.ok(viaSync.length <= zlibSize * 1.01, `${viaSync.length} vs zlib ${zlibSize}`);
  const text = Buffer.alloc(GZIP_BLOCK, 'kiln layer text ');
  assert.ok((await gzipMember(text, 6, deflateRawSync, crc32)).length < 10_000);
  const random = randomBytes(GZIP_BLOCK);
  const stored = await gzipMember(random, 6, deflateRawSync, crc32);
  const endsRandom = Buffer.concat([text.subarray(0, 200_000), random.subarray(0, 300_000)]);
  assert.ok((await gzipMember(endsRandom, 6, deflateRawSync, crc32)).equals(await gzipMember(endsRandom, 6, promisify(deflateRaw) as DeflateRaw, crc32)), 'a stored last run: same bytes sync or async');
  assert.ok(stored.length < random.length + 200 && gunzipSync(stored).equals(random));
  assert.ok(gunzipSync(await gzipMember(Buffer.alloc(0), 6, deflateRawSync)).length === 0);
  assert.ok(gunzipSync(await gzipMember(randomBytes(70_000), 0, deflateRawSync)).length === 70_000);
});

test('random input comes out stored: as small as zlib makes it, the same bytes on both paths', async () => {
  const data = randomBytes(GZIP_BLOCK * 2 + 300_000);
  const pooled = await collect(parallelGzip(from(chunks(data, [GZIP_BLOCK])), 6, 2));
  assert.ok(gunzipSync(pooled).equals(data));
  assert.ok(pooled.length < data.length * 1.001 + 100, `stored: ${pooled.length} bytes for ${data.length}`);
  const one = await collect(parallelGzip(from([Buffer.from(data.subarray(0, GZIP_BLOCK))]), 6, 2));
  assert.ok(pooled.subarray(0, one.length).equals(one));
});

test('the workers write gzipMember\'s members of whole runs, block by block', async () => {
  const data = Buffer.concat([mixedBlock(100 * 1024, GZIP_BLOCK * 2), randomBytes(GZIP_BLOCK), Buffer.alloc(5000, 'z')]);
  await startGzipWorkers(2);
  const viaWorkers = await collect(parallelGzip(from(chunks(data, [GZIP_BLOCK])), 6, 2));
  const inProcess: Buffer[] = [];
  for (let i = 0; i < data.length; i += GZIP_BLOCK) inProcess.push(await gzipMember(data.subarray(i, i + GZIP_BLOCK), 6, deflateRawSync, crc32));
  assert.ok(viaWorkers.equals(Buffer.concat(inProcess)));
  assert.ok(gunzipSync(viaWorkers).equals(data));
});

test('a failing source rejects, and the shared workers still serve the next stream', async () => {
  async function* bad(): AsyncGenerator<Buffer> {
    yield Buffer.alloc(GZIP_BLOCK * 3);
    throw new Error('source broke');
  }
  try {
    await collect(parallelGzip(bad(), 6, 2));
    assert.unreachable();
  } catch (err) {
    assert.match(String(err), /source broke/);
  }
  const data = randomBytes(GZIP_BLOCK * 2 + 5);
  assert.ok(gunzipSync(await collect(parallelGzip(from([Buffer.from(data)]), 6, 2))).equals(data));
});

test('zstd output is independent of the thread count and decompresses', async () => {
  const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(2_000_000, 'x')]);
  const a = await collect(zstdCompress(from(chunks(data, [65536])), 3, 1));
  const b = await collect(zstdCompress(from(chunks(data, [1_000_000])), 3, 2));
  assert.ok(a.equals(b));
  assert.ok((await zstdDecompress(a)).equals(data));
  assert.is(detectCompression(a), 'zstd');
});

test.run();
