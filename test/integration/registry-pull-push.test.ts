import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OciLayoutStore, verifyStore } from '../../src/content/index.js';
import { DigestMismatchError } from '../../src/errors.js';
import { readImage, writeImage, writeIndex } from '../../src/image/index.js';
import { MediaType } from '../../src/oci/media-types.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { parseDockerRef } from '../../src/oci/reference.js';
import { pullImage, pushImage, RegistryClient, resolve } from '../../src/registry/index.js';
import { ensureBusyboxLayout, pushBusybox } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const t = suite<{ reg: TestRegistry; work: string; layout: string; client: RegistryClient }>('registry pull/push');

t.before(async (ctx) => {
  ctx.layout = await ensureBusyboxLayout();
  ctx.reg = await startRegistry();
  ctx.work = await mkdtemp(join(tmpdir(), 'kiln-regtest-'));
  ctx.client = new RegistryClient({ retryBaseMs: 10 });
});
t.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.reg?.stop();
  await rm(ctx.work, { recursive: true, force: true });
});

let n = 0;
const freshStore = (work: string) => new OciLayoutStore(join(work, `store-${n++}`));

async function skopeoRaw(ref: string): Promise<Buffer> {
  const { stdout } = await run('skopeo', ['--insecure-policy', 'inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { timeout: 60_000, encoding: 'buffer', maxBuffer: 16 << 20 });
  return stdout;
}

async function layoutBlob(layout: string, digest: string): Promise<Buffer> {
  return readFile(join(layout, 'blobs', 'sha256', digest.slice(7)));
}

t('an image pushed by skopeo (OCI) pulls bit-exact and is tagged', async ({ reg, work, layout, client }) => {
  const ref = await pushBusybox(reg, { tag: 'oci' });
  const store = freshStore(work);
  const img = await pullImage(ref, { store, client });
  const raw = await skopeoRaw(ref);
  assert.equal(img.rawManifest, raw);
  assert.is(img.descriptor.mediaType, MediaType.OciManifest);
  for (const d of [img.manifest.config, ...img.layers]) {
    assert.equal(await readFile(store.blobPath(d.digest)), await layoutBlob(layout, d.digest), `blob ${d.digest}`);
  }
  assert.is((await store.getTag(`${reg.host}/busybox:oci`))?.digest, img.descriptor.digest);
  const again = await readImage(store, (await store.getTag(`${reg.host}/busybox:oci`))!);
  assert.equal(again.rawConfig, img.rawConfig);
  const report = await verifyStore(store);
  assert.equal(report.mismatches, []);
  assert.is(report.checked, 2 + img.layers.length);
});

t('a Docker schema2 image pushed by skopeo pulls bit-exact; resolve() finds its digest', async ({ reg, work, client }) => {
  const ref = await pushBusybox(reg, { tag: 'v2s2', format: 'v2s2' });
  const store = freshStore(work);
  const img = await pullImage(ref, { store, client });
  assert.is(img.descriptor.mediaType, MediaType.DockerManifest);
  assert.equal(img.rawManifest, await skopeoRaw(ref));
  const r = await resolve(parseDockerRef(ref), client);
  assert.is(r.descriptor.digest, img.descriptor.digest);
  assert.is(r.descriptor.mediaType, MediaType.DockerManifest);
});

t('an image pushed by kiln (chunked, no mount) is read bit-exact by skopeo and unpacked by umoci', async ({ reg, work, client }) => {
  const src = await pushBusybox(reg, { tag: 'src' });
  const store = freshStore(work);
  const img = await pullImage(src, { store, client });
  const target = `${reg.host}/kiln/pushed:1`;
  const res = await pushImage(store, img.descriptor, target, { client, chunkSize: 256 * 1024, monolithicMax: 1024, mountFrom: [] });
  assert.is(res.uploaded, 2);
  assert.is(res.mounted, 0);
  assert.equal(await skopeoRaw(target), img.rawManifest);
  const oci = join(work, 'skopeo-oci');
  await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${target}`, `oci:${oci}:t`], { timeout: 120_000 });
  for (const d of [img.manifest.config, ...img.layers]) {
    assert.equal(await readFile(join(oci, 'blobs', 'sha256', d.digest.slice(7))), await readFile(store.blobPath(d.digest)));
  }
  const bundle = join(work, 'bundle');
  await run('umoci', ['unpack', '--image', `${oci}:t`, bundle], { timeout: 120_000 });
  assert.ok((await stat(join(bundle, 'rootfs', 'bin', 'busybox'))).size > 100_000);
  // Re-push: every blob already there, manifest re-PUT.
  const t0 = Date.now();
  const again = await pushImage(store, img.descriptor, target, { client });
  assert.is(again.existed, 2);
  assert.is(again.uploaded, 0);
  assert.ok(Date.now() - t0 < 2000, `re-push took ${Date.now() - t0} ms`);
});

t('push mounts blobs from another repository of the same registry', async ({ reg, work, client }) => {
  const src = await pushBusybox(reg, { repo: 'mount/source', tag: '1' });
  const store = freshStore(work);
  const img = await pullImage(src, { store, client });
  const res = await pushImage(store, img.descriptor, `${reg.host}/mount/target:1`, { client });
  assert.is(res.mounted, 2);
  assert.is(res.uploaded, 0);
  assert.equal(await skopeoRaw(`${reg.host}/mount/target:1`), img.rawManifest);
});

t('a multi-platform index pushed by kiln is read by skopeo; pull selects the platform', async ({ reg, work, client }) => {
  const src = await pushBusybox(reg, { tag: 'forindex' });
  const store = freshStore(work);
  const amd = await pullImage(src, { store, client, platform: { os: 'linux', architecture: 'amd64' } });
  const armConfig = { ...amd.config, architecture: 'arm64', variant: 'v8' };
  const arm = await writeImage(store, { config: armConfig, layers: amd.layers });
  const amdDesc = { ...amd.descriptor, platform: { os: 'linux', architecture: 'amd64' } };
  const idx = await writeIndex(store, [amdDesc, arm.descriptor]);
  const target = `${reg.host}/multi:1`;
  await pushImage(store, idx.descriptor, target, { client });
  assert.equal(await skopeoRaw(target), idx.raw);
  const store2 = freshStore(work);
  const pulled = await pullImage(target, { store: store2, client, platform: { os: 'linux', architecture: 'aarch64' } });
  assert.is(pulled.descriptor.digest, arm.descriptor.digest);
  assert.is(pulled.config.architecture, 'arm64');
  assert.is(pulled.top.digest, idx.descriptor.digest);
  assert.is((await store2.getTag(target))?.mediaType, MediaType.OciIndex);
  // The same manifests as a Docker manifest list.
  const list = await writeIndex(store, [amdDesc, arm.descriptor], { format: 'docker' });
  const listTarget = `${reg.host}/multi:list`;
  await pushImage(store, list.descriptor, listTarget, { client });
  assert.equal(await skopeoRaw(listTarget), list.raw);
  const fromList = await pullImage(listTarget, { store: freshStore(work), client, platform: { os: 'linux', architecture: 'amd64' } });
  assert.is(fromList.top.mediaType, MediaType.DockerManifestList);
  assert.is(fromList.descriptor.digest, amd.descriptor.digest);
  try {
    await pullImage(target, { store: freshStore(work), client, platform: { os: 'linux', architecture: 's390x' } });
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, 'linux/s390x');
    assert.match((err as { hint?: string }).hint ?? '', 'linux/arm64/v8');
  }
});

t('push leaves foreign (non-distributable) layers out, as docker push does', async ({ work, client }) => {
  // A registry that accepts foreign layer URLs (distribution refuses them by default).
  const reg = await startRegistry({ extraConfig: 'validation:\n  manifests:\n    urls:\n      allow:\n        - ^https://' });
  try {
    const src = await pushBusybox(reg, { tag: 'forforeign' });
    const store = freshStore(work);
    const img = await pullImage(src, { store, client });
    const foreignLayer = { mediaType: MediaType.DockerForeignLayerGzip, digest: sha256Digest('not here'), size: 8, urls: ['https://example.invalid/layer.tar.gz'] };
    const withForeign = await writeImage(store, { config: img.rawConfig, layers: [...img.layers, foreignLayer], format: 'docker' });
    const res = await pushImage(store, withForeign.descriptor, `${reg.host}/foreign:1`, { client });
    assert.is(res.existed + res.mounted + res.uploaded, 2);
    assert.equal(await skopeoRaw(`${reg.host}/foreign:1`), withForeign.rawManifest);
  } finally {
    await reg.stop();
  }
});

// Runs last: it corrupts a blob that every repository of this registry shares.
t('a blob tampered with in the registry storage is refused and nothing lands in the store', async ({ reg, work, client }) => {
  const ref = await pushBusybox(reg, { repo: 'tamper', tag: '1' });
  const manifest = JSON.parse((await skopeoRaw(ref)).toString());
  const layer = manifest.layers[0].digest as string;
  const data = join(reg.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', layer.slice(7, 9), layer.slice(7), 'data');
  assert.ok(existsSync(data));
  const bytes = await readFile(data);
  bytes[Math.floor(bytes.length / 2)] ^= 0x55;
  await writeFile(data, bytes);
  const store = freshStore(work);
  try {
    await pullImage(ref, { store, client });
    assert.unreachable('pull should fail');
  } catch (err) {
    assert.instance(err, DigestMismatchError);
    assert.is((err as DigestMismatchError).expected, layer);
    assert.match((err as Error).message, 'layer 1 of');
  }
  assert.is(await store.stat(layer as never), undefined);
  assert.is(await store.getTag(ref), undefined);
  assert.equal(await readdir(join(store.root, 'ingest')), []);
  assert.equal((await verifyStore(store)).mismatches, []);
});

t.run();
