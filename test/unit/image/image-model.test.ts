import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OciLayoutStore } from '../../../src/content/index.js';
import { parseManifestDocument, readImage, selectManifest, writeImage, writeIndex } from '../../../src/image/index.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { sha256Digest } from '../../../src/oci/digest.js';
import type { Index } from '../../../src/oci/manifest.js';
import { MediaType } from '../../../src/oci/media-types.js';

const d = (n: string, platform?: Descriptor['platform']): Descriptor => ({ mediaType: MediaType.OciManifest, digest: sha256Digest(n), size: 1, ...(platform ? { platform } : {}) });

const index: Index = {
  schemaVersion: 2,
  manifests: [
    d('amd64', { os: 'linux', architecture: 'amd64' }),
    d('armv6', { os: 'linux', architecture: 'arm', variant: 'v6' }),
    d('armv7', { os: 'linux', architecture: 'arm', variant: 'v7' }),
    d('arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    d('attest', { os: 'unknown', architecture: 'unknown' }),
  ],
};

test('platform selection normalises names and variants as containerd does', () => {
  assert.is(selectManifest(index, { os: 'linux', architecture: 'x86_64' }).digest, sha256Digest('amd64'));
  assert.is(selectManifest(index, { os: 'linux', architecture: 'aarch64' }).digest, sha256Digest('arm64'));
  assert.is(selectManifest(index, { os: 'linux', architecture: 'arm64' }).digest, sha256Digest('arm64'));
  assert.is(selectManifest(index, { os: 'linux', architecture: 'arm' }).digest, sha256Digest('armv7'));
  assert.is(selectManifest(index, { os: 'linux', architecture: 'arm', variant: 'v6' }).digest, sha256Digest('armv6'));
  assert.is(selectManifest(index, { os: 'linux', architecture: 'armhf' }).digest, sha256Digest('armv7'));
  // arm/v8 (32-bit) runs v7 images when no v8 exists.
  assert.is(selectManifest(index, { os: 'linux', architecture: 'arm', variant: 'v8' }).digest, sha256Digest('armv7'));
  // an arm64 entry without a variant matches arm64/v8
  assert.is(selectManifest({ schemaVersion: 2, manifests: [d('plain', { os: 'linux', architecture: 'arm64' })] }, { os: 'linux', architecture: 'arm64', variant: 'v8' }).digest, sha256Digest('plain'));
  assert.throws(() => selectManifest(index, { os: 'linux', architecture: 's390x' }), /linux\/s390x/);
  assert.throws(() => selectManifest(index, { os: 'windows', architecture: 'amd64' }), /windows\/amd64/);
  // arm/v5 host cannot run v6/v7
  assert.throws(() => selectManifest(index, { os: 'linux', architecture: 'arm', variant: 'v5' }));
});

test('manifest documents: OCI, Docker, index by shape; schema 1 refused', () => {
  const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: d('c'), layers: [d('l')] }));
  const doc = parseManifestDocument(m);
  assert.is(doc.kind, 'manifest');
  assert.is(doc.mediaType, MediaType.DockerManifest);
  assert.is(doc.raw, m);
  const idx = parseManifestDocument(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })));
  assert.is(idx.kind, 'index');
  assert.is(idx.mediaType, MediaType.OciIndex);
  const typed = parseManifestDocument(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), MediaType.DockerManifestList);
  assert.is(typed.mediaType, MediaType.DockerManifestList);
  assert.throws(() => parseManifestDocument(Buffer.from('{"schemaVersion":1,"fsLayers":[]}')), /schema 1/);
  assert.throws(() => parseManifestDocument(Buffer.from('{"schemaVersion":2,"config":{"digest":"nope"},"layers":[]}')), /descriptor|digest/i);
  assert.throws(() => parseManifestDocument(Buffer.from('nope')), /not JSON/);
});

test('write then read an image and an index: exact bytes, digests over them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-image-'));
  try {
    const store = new OciLayoutStore(dir);
    const layer = await store.write(Buffer.from('fake layer'));
    const layers = [{ mediaType: MediaType.OciLayerGzip, digest: layer.digest, size: layer.size }];
    const rawConfig = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const img = await writeImage(store, { config: rawConfig, layers });
    assert.is(img.descriptor.digest, sha256Digest(img.rawManifest));
    assert.equal(img.descriptor.platform, { os: 'linux', architecture: 'amd64' });
    assert.is(img.manifest.config.digest, sha256Digest(rawConfig));
    const arm = await writeImage(store, { config: { architecture: 'arm64', variant: 'v8', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }, layers, format: 'docker' });
    assert.is(arm.manifest.mediaType, MediaType.DockerManifest);
    assert.is(arm.manifest.config.mediaType, MediaType.DockerConfig);
    const idx = await writeIndex(store, [img.descriptor, arm.descriptor]);
    const back = await readImage(store, idx.descriptor, { os: 'linux', architecture: 'arm64' });
    assert.is(back.descriptor.digest, arm.descriptor.digest);
    assert.equal(back.rawConfig, arm.rawConfig);
    assert.is(back.index?.descriptor.digest, idx.descriptor.digest);
    const amd = await readImage(store, img.descriptor);
    assert.equal(amd.rawManifest, img.rawManifest);
    assert.equal(amd.rawConfig, rawConfig);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
