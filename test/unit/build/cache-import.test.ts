import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CacheImport, ImportingCacheStore, LOCAL_CACHE_TAG, lazyContentStore } from '../../../src/build/cache-import.js';
import { cacheManifest, encodeCacheDocument } from '../../../src/build/cache-manifest.js';
import type { CacheRecord } from '../../../src/build/cache-store.js';
import { openContentStore } from '../../../src/content/oci-layout-store.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { sha256Digest, type Digest } from '../../../src/oci/digest.js';
import { MediaType } from '../../../src/oci/media-types.js';
import { hostPlatform } from '../../../src/oci/platform.js';

const noClient = async () => {
  throw new Error('no registry in this test');
};

/** A local cache dir holding one record over two fake layer blobs, and an image manifest using them. */
async function fixture() {
  const work = await mkdtemp(join(tmpdir(), 'kiln-cache-imp-'));
  const layout = openContentStore(join(work, 'cache'));
  const blobs = [Buffer.from('layer one'), Buffer.from('layer two')];
  const layers = [];
  for (const b of blobs) {
    const info = await layout.write(b);
    layers.push({ descriptor: { mediaType: MediaType.OciLayer, digest: info.digest, size: info.size } as Descriptor, diffId: info.digest });
  }
  const record: CacheRecord = {
    key: sha256Digest(Buffer.from('step')),
    parts: { instruction: 'RUN x', parent: 'p', platform: 'linux/amd64', args: {} },
    state: { config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }, layers },
  };
  const doc = encodeCacheDocument([record]);
  const cfg = await layout.write(Buffer.from(JSON.stringify(doc)));
  const m = await layout.write(Buffer.from(JSON.stringify(cacheManifest({ mediaType: MediaType.KilnCacheConfig, digest: cfg.digest, size: cfg.size }, doc))));
  await layout.setTag(LOCAL_CACHE_TAG, { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size });
  const store = openContentStore(join(work, 'root'));
  return { work, record, layers, store };
}

test('imported records are found after local ones; blobs are fetched only when read, stat-ed or tagged', async () => {
  const { work, record, layers, store } = await fixture();
  try {
    const warnings: string[] = [];
    const imp = await CacheImport.load([{ type: 'local', src: join(work, 'cache') }], { store, client: noClient, platform: hostPlatform(), onWarning: (w) => warnings.push(w) });
    assert.equal(warnings, []);
    const cache = new ImportingCacheStore(join(work, 'root'), imp);
    const hit = await cache.get(record.key);
    assert.equal(hit?.state.layers.map((l) => l.descriptor.digest), layers.map((l) => l.descriptor.digest));
    assert.ok(cache.importedHits.has(record.key));
    assert.is(await cache.get(sha256Digest(Buffer.from('other'))), undefined);
    assert.equal(imp.fetched, [], 'a hit fetches nothing');

    const lazy = lazyContentStore(store, imp);
    const [a, b] = layers.map((l) => l.descriptor.digest) as [Digest, Digest];
    assert.is((await lazy.read(a)).toString(), 'layer one');
    assert.equal(imp.fetched, [a]);
    assert.ok(await store.stat(a), 'now in the real store');
    assert.is(await store.stat(b), undefined, 'the other blob is still remote');
    assert.is(await lazy.stat(sha256Digest(Buffer.from('unknown'))), undefined);

    // Tagging an image fetches whatever of it is missing.
    const cfg = await store.write(Buffer.from('{}'));
    const man = await store.write(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size }, layers: layers.map((l) => l.descriptor) })));
    await lazy.setTag('x', { mediaType: MediaType.OciManifest, digest: man.digest, size: man.size });
    assert.ok(await store.stat(b));
    assert.equal(imp.fetched, [a, b]);

    // Used imported records whose blobs are all local become local records.
    await cache.keepImported(store);
    const plain = new ImportingCacheStore(join(work, 'root'));
    assert.ok(await plain.get(record.key));
    assert.not.ok(plain.importedHits.has(record.key));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('an unusable source is a warning naming it; the build goes on without it', async () => {
  const { work, store } = await fixture();
  try {
    const warnings: string[] = [];
    const imp = await CacheImport.load([{ type: 'local', src: join(work, 'nowhere') }, { type: 'local', src: join(work, 'cache') }], {
      store,
      client: noClient,
      platform: hostPlatform(),
      onWarning: (w) => warnings.push(w),
    });
    assert.is(imp.records.size, 1);
    assert.is(warnings.length, 1);
    assert.match(warnings[0]!, /^Cannot import build cache from local directory ".*nowhere": ".*nowhere" is not an OCI layout/);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test.run();
