import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OciLayoutStore } from '../../src/content/index.js';
import { writeImage, writeIndex } from '../../src/image/index.js';
import { pullImage, pushImage, RegistryClient } from '../../src/registry/index.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { runKiln } from '../helpers/run-kiln.js';

const t = suite<{ reg: TestRegistry; work: string; env: Record<string, string>; ref: string }>('kiln images/tag/rmi/inspect/prune/store verify');

function kiln(args: string[], env: Record<string, string>) {
  return runKiln(args, { env });
}

t.before(async (ctx) => {
  ctx.reg = await startRegistry();
  ctx.work = await mkdtemp(join(tmpdir(), 'kiln-storecli-'));
  ctx.env = { KILN_ROOT: join(ctx.work, 'root'), DOCKER_CONFIG: join(ctx.work, 'docker'), CONTAINERS_REGISTRIES_CONF: join(ctx.work, 'registries.conf') };
  await writeFile(ctx.env.CONTAINERS_REGISTRIES_CONF!, '');
  ctx.ref = await pushBusybox(ctx.reg);
});
t.after(async (ctx) => {
  await ctx.reg?.stop();
  await rm(ctx.work, { recursive: true, force: true });
});

t('pull, images, tag, inspect (local), rmi, prune, store verify', async ({ env, ref }) => {
  const pull = await kiln(['pull', ref], env);
  assert.is(pull.code, 0, pull.err);
  assert.match(pull.out, 'Pull complete');
  assert.match(pull.out, `${ref}\n`);
  const again = await kiln(['pull', ref], env);
  assert.match(again.out, 'Already exists');

  assert.is((await kiln(['tag', ref, 'example.com/mine:1'], env)).code, 0);
  const images = await kiln(['images', '--json'], env);
  const rows = JSON.parse(images.out) as Array<{ name: string; digest: string; platforms: string[]; size: number }>;
  assert.equal(rows.map((r) => r.name), [ref, 'example.com/mine:1'].sort());
  assert.is(rows[0]!.digest, rows[1]!.digest);
  assert.ok(rows[0]!.size > 100_000);
  const table = await kiln(['images'], env);
  assert.match(table.out, /^NAME\s+DIGEST\s+PLATFORMS\s+SIZE\n/);
  assert.match(table.out, 'example.com/mine:1');

  const inspect = await kiln(['inspect', 'example.com/mine:1'], env);
  assert.is(inspect.code, 0, inspect.err);
  const doc = JSON.parse(inspect.out);
  assert.is(doc.source, 'local');
  assert.is(doc.config.os, 'linux');
  assert.is(doc.manifest.layers.length, 1);

  assert.is((await kiln(['rmi', ref], env)).code, 0);
  const missing = await kiln(['rmi', ref], env);
  assert.is(missing.code, 1);
  assert.match(missing.err, 'no such image');
  // Still referenced by example.com/mine:1: nothing to prune.
  const p1 = await kiln(['prune'], env);
  assert.match(p1.out, '(0 blobs; 3 kept)');
  assert.is((await kiln(['rmi', 'example.com/mine:1'], env)).code, 0);
  const dry = await kiln(['prune', '--dry-run'], env);
  assert.match(dry.out, 'Would delete: sha256:');
  const p2 = await kiln(['prune'], env);
  assert.match(p2.out, '(3 blobs; 0 kept)');
  const v = await kiln(['store', 'verify'], env);
  assert.is(v.code, 0);
  assert.match(v.out, 'Checked 0 blobs');
});

t('store verify reports a tampered blob and exits 1', async ({ env, ref }) => {
  assert.is((await kiln(['pull', '-q', ref], env)).code, 0);
  const store = new OciLayoutStore(env.KILN_ROOT!);
  const desc = (await store.getTag(ref))!;
  const manifest = JSON.parse((await store.read(desc.digest)).toString());
  const layer = manifest.layers[0].digest;
  const path = store.blobPath(layer);
  const bytes = await readFile(path);
  bytes[100] ^= 1;
  await writeFile(path, bytes);
  const v = await kiln(['store', 'verify'], env);
  assert.is(v.code, 1);
  assert.match(v.out, `MISMATCH ${layer}`);
  assert.match(v.out, '1 mismatched');
  const json = JSON.parse((await kiln(['store', 'verify', '--json'], env)).out);
  assert.is(json.mismatches[0].digest, layer);
});

t('usage errors: unknown image, bad arguments', async ({ env }) => {
  const push = await kiln(['push', 'nothing/here:1'], env);
  assert.is(push.code, 1);
  assert.match(push.err, 'Cannot push "docker.io/nothing/here:1": no such image in the local store');
  const tag = await kiln(['tag', 'only-one'], env);
  assert.is(tag.code, 2);
  const pull = await kiln(['pull'], env);
  assert.is(pull.code, 2);
});

t('two kiln pull processes into the same store at once both succeed; the store stays consistent', async ({ env, ref, work }) => {
  const shared = { ...env, KILN_ROOT: join(work, 'shared-root') };
  const [a, b] = await Promise.all([kiln(['pull', '-q', ref], shared), kiln(['pull', '-q', ref], shared)]);
  assert.is(a.code, 0, a.err);
  assert.is(b.code, 0, b.err);
  const v = await kiln(['store', 'verify', '--json'], shared);
  assert.is(v.code, 0, v.out);
  const report = JSON.parse(v.out);
  assert.is(report.checked, 3);
  const store = new OciLayoutStore(shared.KILN_ROOT);
  assert.equal((await store.listTags()).map((x) => x.name), [ref]);
  assert.equal(await readdir(join(shared.KILN_ROOT, 'ingest')), []);
});

t('push of a multi-platform image pulled for one platform: refused with a hint, then --platform pushes that one', async ({ env, reg, work }) => {
  // A two-platform index in the registry, made with the library (the arm64 entry reuses the layer).
  const lib = new OciLayoutStore(join(work, 'lib'));
  const client = new RegistryClient();
  let amdDigest: string;
  try {
    const amd = await pullImage(`${reg.host}/busybox:latest`, { store: lib, client, platform: { os: 'linux', architecture: 'amd64' } });
    amdDigest = amd.descriptor.digest;
    const arm = await writeImage(lib, { config: { ...amd.config, architecture: 'arm64', variant: 'v8' }, layers: amd.layers });
    const idx = await writeIndex(lib, [{ ...amd.descriptor, platform: { os: 'linux', architecture: 'amd64' } }, arm.descriptor]);
    await pushImage(lib, idx.descriptor, `${reg.host}/multi:1`, { client });
  } finally {
    await client.close();
  }
  const e = { ...env, KILN_ROOT: join(work, 'multi-root') };
  assert.is((await kiln(['pull', '-q', '--platform', 'linux/amd64', `${reg.host}/multi:1`], e)).code, 0);
  const refused = await kiln(['push', `${reg.host}/multi:1`, `${reg.host}/multi-copy:1`], e);
  assert.is(refused.code, 1);
  assert.match(refused.err, '(linux/arm64/v8) of the index is not in the store or the registry');
  assert.match(refused.err, 'kiln push --platform');
  const ok = await kiln(['push', '--platform', 'linux/amd64', `${reg.host}/multi:1`, `${reg.host}/multi-copy:1`], e);
  assert.is(ok.code, 0, ok.err);
  assert.match(ok.out, `${reg.host}/multi-copy:1@${amdDigest}`);
});

t.run();
