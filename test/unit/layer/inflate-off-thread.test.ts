import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openContentStore } from '../../../src/content/index.js';
import { DigestMismatchError, KilnError } from '../../../src/errors.js';
import { applyLayer } from '../../../src/layer/apply.js';
import { inflateOffThread, OFF_THREAD_MIN_BYTES } from '../../../src/layer/inflate-off-thread.js';
import type { Digest } from '../../../src/oci/digest.js';
import { craftTar, type CraftEntry } from '../../helpers/craft-tar.js';

/**
 * Big stored gzip layers are read, verified and inflated on a worker thread. What a user
 * sees must not change: the same files as the in-process path, and the store's read-time
 * digest check (a blob whose bytes changed on disk fails the apply).
 */
const test = suite('layer: inflate off thread');
let base = '';
let big: Buffer; // a gzip layer over OFF_THREAD_MIN_BYTES
let bigEntries: CraftEntry[];

/** What `p` rejects with (undefined when it resolves). */
const rejection = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

const sha = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

/** Every regular file under `dir`: relative path → sha256 and mode. */
function tree(dir: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = statSync(join(dir, r));
    if (st.isDirectory()) {
      out.set(r + '/', (st.mode & 0o7777).toString(8));
      for (const [k, v] of tree(dir, r)) out.set(k, v);
    } else out.set(r, `${sha(readFileSync(join(dir, r)))} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs}`);
  }
  return out;
}

test.before(() => {
  base = mkdtempSync(join(tmpdir(), 'kiln-inflate-'));
  // Random data does not compress: 18 files of 1 MiB make a gzip over the threshold.
  bigEntries = [{ name: 'data/', type: 'dir', mode: 0o750, mtime: 1_600_000_000 }];
  for (let i = 0; i < 18; i++) bigEntries.push({ name: `data/f${i}`, data: randomBytes(1024 * 1024), mode: 0o640, mtime: 1_600_000_000 + i });
  bigEntries.push({ name: 'etc/hostname', data: 'kiln\n', mtime: 1_700_000_000 });
  bigEntries.push({ name: 'etc/link', type: 'symlink', linkname: 'hostname', mtime: 1_700_000_000 });
  big = gzipSync(craftTar(bigEntries), { level: 1 });
  assert.ok(big.length >= OFF_THREAD_MIN_BYTES, `fixture is ${big.length} bytes`);
});

test.after(() => rmSync(base, { recursive: true, force: true }));

test('a big stored gzip layer gives the same tree as the in-process path', async () => {
  const store = openContentStore(join(base, 'store1'));
  const info = await store.write(big);
  const viaWorker = join(base, 'worker');
  const inProcess = join(base, 'in-process');
  mkdirSync(viaWorker);
  mkdirSync(inProcess);
  const s1 = await applyLayer({ store, digest: info.digest, size: info.size }, viaWorker);
  const s2 = await applyLayer(Readable.from([big]), inProcess);
  assert.equal(s1, s2);
  const t = tree(viaWorker);
  assert.equal(t, tree(inProcess));
  assert.is(t.get('data/'), '750');
  assert.is(readFileSync(join(viaWorker, 'data/f17')).length, 1024 * 1024);
});

test('the worker streams what gunzip gives, and only for big gzip blobs', async () => {
  const path = join(base, 'big.gz');
  writeFileSync(path, big);
  const it = inflateOffThread(path, sha(big), big.length);
  assert.ok(it, 'a big gzip blob goes to the worker');
  const chunks: Buffer[] = [];
  for await (const c of it) chunks.push(c);
  assert.is(sha(Buffer.concat(chunks)), sha(craftTar(bigEntries)));

  const small = gzipSync(craftTar([{ name: 'a', data: 'A' }]));
  writeFileSync(join(base, 'small.gz'), small);
  assert.is(inflateOffThread(join(base, 'small.gz'), sha(small), small.length), undefined);
  const plain = Buffer.concat([craftTar(bigEntries)]);
  writeFileSync(join(base, 'plain.tar'), plain);
  assert.is(inflateOffThread(join(base, 'plain.tar'), sha(plain), plain.length), undefined, 'uncompressed stays in-process');
  assert.is(inflateOffThread(join(base, 'missing.gz'), sha(big), big.length), undefined, 'a missing blob is reported by the in-process path');
});

test('a stored blob whose bytes changed on disk fails with a digest mismatch', async () => {
  const store = openContentStore(join(base, 'store2'));
  const info = await store.write(big);
  // Change the gzip header's MTIME field: gunzip does not check it, only the digest can.
  const bad = Buffer.from(big);
  bad[4] ^= 0xff;
  writeFileSync(store.blobPath(info.digest), bad);
  const dir = join(base, 'tampered');
  mkdirSync(dir);
  const err = await rejection(applyLayer({ store, digest: info.digest, size: info.size }, dir));
  assert.instance(err, DigestMismatchError);
  assert.match((err as Error).message, info.digest);

  // A blob longer than its descriptor says is refused too.
  writeFileSync(store.blobPath(info.digest), Buffer.concat([big, Buffer.alloc(10)]));
  const err2 = await rejection(applyLayer({ store, digest: info.digest, size: info.size }, dir));
  assert.instance(err2, DigestMismatchError);
});

test('an unsafe entry stops the apply and the worker with it', async () => {
  const evil = gzipSync(craftTar([...bigEntries.slice(0, 3), { name: '../escape', data: 'x' }, ...bigEntries.slice(3)]), { level: 1 });
  const store = openContentStore(join(base, 'store3'));
  const info = await store.write(evil);
  const dir = join(base, 'evil');
  mkdirSync(dir);
  const err = await rejection(applyLayer({ store, digest: info.digest, size: info.size }, dir));
  assert.instance(err, KilnError);
  assert.is((err as KilnError).code, 'LAYER_UNSAFE_ENTRY');
  assert.not.ok(readdirSync(base).includes('escape'));
});

test('a corrupt gzip stream fails as it does in-process', async () => {
  const store = openContentStore(join(base, 'store4'));
  const corrupt = Buffer.from(big);
  corrupt.fill(0x55, corrupt.length >> 1, (corrupt.length >> 1) + 4096);
  const info = await store.write(corrupt); // stored under its own digest: only gunzip and tar can tell
  const fail = async (src: Parameters<typeof applyLayer>[0], name: string): Promise<KilnError> => {
    const dir = join(base, name);
    mkdirSync(dir);
    const err = await rejection(applyLayer(src, dir));
    assert.instance(err, KilnError);
    return err as KilnError;
  };
  const viaWorker = await fail({ store, digest: info.digest, size: info.size }, 'corrupt-worker');
  const inProcess = await fail(Readable.from([corrupt]), 'corrupt-in-process');
  assert.is(viaWorker.code, inProcess.code);
  assert.is(viaWorker.message.replace('corrupt-worker', 'X'), inProcess.message.replace('corrupt-in-process', 'X'));
});

test.run();
