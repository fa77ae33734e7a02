import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { collectGarbage, OciLayoutStore, verifyStore } from '../../../src/content/index.js';
import { DigestMismatchError } from '../../../src/errors.js';
import { type Digest, sha256Digest } from '../../../src/oci/digest.js';
import { MediaType } from '../../../src/oci/media-types.js';

const t = suite<{ dir: string; store: OciLayoutStore }>('content store');

t.before.each(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'kiln-store-'));
  ctx.store = new OciLayoutStore(ctx.dir);
});
t.after.each(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

t('ingest stores bytes under their digest and is idempotent', async ({ store, dir }) => {
  const data = Buffer.from('hello kiln');
  const info = await store.ingest(Readable.from([data.subarray(0, 3), data.subarray(3)]));
  assert.is(info.digest, sha256Digest(data));
  assert.is(info.size, data.length);
  assert.equal(await readFile(join(dir, 'blobs', 'sha256', info.digest.slice(7))), data);
  const again = await store.write(data, { digest: info.digest, size: data.length });
  assert.equal(again, info);
  assert.equal((await store.read(info.digest)).toString(), 'hello kiln');
  assert.equal(await readFile(join(dir, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
});

t('ingest with a wrong digest raises DigestMismatchError and leaves nothing behind', async ({ store, dir }) => {
  const wrong = sha256Digest('other');
  try {
    await store.write(Buffer.from('payload'), { digest: wrong, what: 'layer 1' });
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, DigestMismatchError);
    const e = err as DigestMismatchError;
    assert.is(e.expected, wrong);
    assert.is(e.actual, sha256Digest('payload'));
    assert.is(e.bytes, 7);
    assert.match(e.message, 'layer 1');
  }
  assert.equal(await readdir(join(dir, 'blobs', 'sha256')), []);
  assert.equal(await readdir(join(dir, 'ingest')), []);
});

t('ingest with a wrong size fails even when the source keeps sending', async ({ store, dir }) => {
  const data = Buffer.alloc(100, 1);
  await assert.not.throws(() => undefined);
  let threw = false;
  try {
    await store.write(data, { digest: sha256Digest(data), size: 50 });
  } catch (err) {
    threw = err instanceof DigestMismatchError;
  }
  assert.ok(threw);
  assert.equal(await readdir(join(dir, 'ingest')), []);
  assert.is(await store.stat(sha256Digest(data)), undefined);
});

t('a failing source stream leaves no temp file', async ({ store, dir }) => {
  const src = new Readable({
    read() {
      this.push(Buffer.alloc(10));
      this.destroy(new Error('connection reset'));
    },
  });
  try {
    await store.ingest(src);
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, 'connection reset');
  }
  assert.equal(await readdir(join(dir, 'ingest')), []);
});

t('open verifies while reading: a tampered blob errors at the end', async ({ store }) => {
  const info = await store.write(Buffer.from('original'));
  await writeFile(store.blobPath(info.digest), 'tampered');
  const s = await store.open(info.digest);
  try {
    for await (const _ of s) void _;
    assert.unreachable();
  } catch (err) {
    assert.instance(err, DigestMismatchError);
  }
  try {
    await store.read(info.digest);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, DigestMismatchError);
  }
  const report = await verifyStore(store);
  assert.is(report.checked, 1);
  assert.is(report.mismatches.length, 1);
  assert.is(report.mismatches[0]!.digest, info.digest);
});

t('tags: set, get, replace, list, delete', async ({ store }) => {
  const a = await store.write(Buffer.from('{"a":1}'));
  const b = await store.write(Buffer.from('{"b":2}'));
  const da = { mediaType: MediaType.OciManifest, digest: a.digest, size: a.size };
  const db = { mediaType: MediaType.OciManifest, digest: b.digest, size: b.size };
  await store.setTag('127.0.0.1:5000/x:1', da);
  await store.setTag('127.0.0.1:5000/x:2', da);
  await store.setTag('127.0.0.1:5000/x:1', db);
  assert.equal((await store.getTag('127.0.0.1:5000/x:1'))?.digest, b.digest);
  assert.equal((await store.listTags()).map((t) => [t.name, t.descriptor]), [
    ['127.0.0.1:5000/x:1', db],
    ['127.0.0.1:5000/x:2', da],
  ]);
  assert.is(await store.deleteTag('127.0.0.1:5000/x:2'), true);
  assert.is(await store.deleteTag('127.0.0.1:5000/x:2'), false);
  assert.is((await store.listTags()).length, 1);
});

t('gc removes only unreachable blobs', async ({ store }) => {
  const layer = await store.write(Buffer.from('layer'));
  const config = await store.write(Buffer.from('{}'));
  const orphan = await store.write(Buffer.from('orphan'));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest: layer.digest, size: layer.size }],
    }),
  );
  const m = await store.write(manifest);
  await store.setTag('r/x:1', { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size });
  const dry = await collectGarbage(store, { dryRun: true });
  assert.equal(dry.removed.map((b) => b.digest), [orphan.digest]);
  assert.ok(await store.stat(orphan.digest));
  const res = await collectGarbage(store);
  assert.equal(res.removed.map((b) => b.digest), [orphan.digest]);
  assert.is(res.kept, 3);
  assert.is(await store.stat(orphan.digest), undefined);
  assert.ok(await store.stat(layer.digest));
});

t('two processes writing tags and the same blob at once stay correct', async ({ dir }) => {
  const mod = new URL('../../../src/content/oci-layout-store.js', import.meta.url).href;
  const script = `
    const { OciLayoutStore } = await import(${JSON.stringify(mod)});
    const s = new OciLayoutStore(process.argv[1]);
    const who = process.argv[2];
    const blob = Buffer.alloc(1 << 20, 7);
    const info = await s.write(blob);
    await Promise.all(Array.from({ length: 20 }, (_, i) =>
      s.setTag('p' + who + '/t:' + i, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: info.digest, size: info.size })));
  `;
  const isTs = import.meta.url.endsWith('.ts');
  const run = (who: string) =>
    new Promise<number>((resolve, reject) => {
      const c = spawn(process.execPath, [...(isTs ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script, dir, who], { stdio: ['ignore', 'ignore', 'inherit'] });
      const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
      c.on('error', reject);
      c.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code ?? -1);
      });
    });
  const codes = await Promise.all([run('a'), run('b'), run('c')]);
  assert.equal(codes, [0, 0, 0]);
  const store = new OciLayoutStore(dir);
  const tags = await store.listTags();
  assert.is(tags.length, 60);
  const report = await verifyStore(store);
  assert.is(report.checked, 1);
  assert.equal(report.mismatches, []);
  assert.equal(await readdir(join(dir, 'ingest')), []);
  const digest: Digest = sha256Digest(Buffer.alloc(1 << 20, 7));
  assert.ok(tags.every((t) => t.descriptor.digest === digest));
});

t('store verify flags files whose names are not digests', async ({ store, dir }) => {
  await store.write(Buffer.from('good'));
  await writeFile(join(dir, 'blobs', 'sha256', 'not-a-digest'), 'x');
  const report = await verifyStore(store);
  assert.is(report.checked, 2);
  assert.equal(report.mismatches.map((m) => m.digest), ['sha256:not-a-digest']);
});

t('a reader that stops early releases the blob file', async ({ store }) => {
  const info = await store.write(Buffer.alloc(4 << 20, 3));
  const path = store.blobPath(info.digest);
  const openOnBlob = async () => {
    let n = 0;
    for (const fd of await readdir('/proc/self/fd')) {
      try {
        if ((await readlink(`/proc/self/fd/${fd}`)) === path) n++;
      } catch {
        /* closed meanwhile */
      }
    }
    return n;
  };
  const s = await store.open(info.digest);
  for await (const _ of s) break;
  await new Promise((r) => setTimeout(r, 50));
  assert.is(await openOnBlob(), 0);
});

t.run();
