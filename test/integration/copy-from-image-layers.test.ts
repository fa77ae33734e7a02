/**
 * COPY --from=<image ref> of literal paths fetches only the top layers that
 * hold the paths (src/build/copy-from-image.ts): a 3-layer image whose
 * bottom layer is 16 MB of random bytes is pushed to a local registry; a
 * build copying a file of the top layer must never download the bottom
 * layer (checked in a fresh $KILN_ROOT's store). Wildcards, directories and
 * symlinks still take the full path; a whiteout still means "not found".
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openContentStore } from '../../src/content/oci-layout-store.js';
import { writeImage, writeIndex } from '../../src/image/index.js';
import type { Digest } from '../../src/oci/digest.js';
import { hostPlatform } from '../../src/oci/platform.js';
import { RegistryClient, pullImage, pushImage } from '../../src/registry/index.js';
import { pushLayout, writeOciLayout } from '../helpers/fixtures.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';
import { type E2EEnv, buildCase, buildFails } from './e2e-harness.js';

let reg: TestRegistry;
let work: string;
let ref: string;
let layout: Awaited<ReturnType<typeof writeOciLayout>>;
let n = 0;

const dir = (name: string) => ({ name, type: 'directory' as const, mode: 0o755 });
const file = (name: string, content: string | Buffer) => ({ name, type: 'file' as const, mode: 0o644, content });

/** A fresh $KILN_ROOT (empty store) sharing the registry. */
async function freshEnv(): Promise<E2EEnv> {
  const root = join(work, `root-${++n}`);
  return { reg, busybox: '', root, work, n: n * 100 };
}

async function stored(env: E2EEnv, layer: number): Promise<boolean> {
  return (await openContentStore(env.root).stat(layout.layers[layer]!.digest as Digest)) !== undefined;
}

test.before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'kiln-copy-from-image-'));
  layout = await writeOciLayout(join(work, 'layout'), {
    config: { Cmd: ['/bin/sh'] },
    layers: [
      // bottom: big, plus a file the middle layer whites out
      { entries: [dir('etc/'), file('etc/gone.conf', 'old\n'), dir('data/'), file('data/big.bin', randomBytes(16 << 20))] },
      // middle
      { entries: [dir('etc/'), file('etc/mid.conf', 'mid\n'), file('etc/.wh.gone.conf', '')] },
      // top
      { entries: [dir('etc/'), file('etc/app.conf', 'hello app\n'), { name: 'etc/link.conf', type: 'symlink', mode: 0o777, linkname: 'app.conf' }] },
    ],
  });
  ref = await pushLayout(reg, layout.dir, 'lazy/app:1');
});

test.after(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('a file of the top layer: only the top layer is fetched; a rebuild is a cache hit', async () => {
  const env = await freshEnv();
  const spec = { dockerfile: `FROM scratch\nCOPY --from=${ref} /etc/app.conf /app.conf\n` };
  const r = await buildCase(env, spec);
  assert.is(await r.read('app.conf'), 'hello app\n');
  assert.ok(r.log.includes('used 1 of 3 layers'), r.log);
  assert.ok(await stored(env, 2), 'top layer fetched');
  assert.not.ok(await stored(env, 1), 'middle layer must not be fetched');
  assert.not.ok(await stored(env, 0), 'bottom layer must not be fetched');
  const again = await buildCase(env, spec);
  assert.ok(/done \S+ cached=true/.test(again.log), again.log);
  assert.is(again.result.manifest.digest, r.result.manifest.digest);
  assert.not.ok(await stored(env, 0), 'bottom layer must not be fetched by the cache hit');
});

test('files of the top and middle layers: the bottom layer is never fetched', async () => {
  const env = await freshEnv();
  const r = await buildCase(env, { dockerfile: `FROM scratch\nCOPY --from=${ref} /etc/mid.conf etc/app.conf /out/\n` });
  assert.is(await r.read('out/mid.conf'), 'mid\n');
  assert.is(await r.read('out/app.conf'), 'hello app\n');
  assert.ok(r.log.includes('used 2 of 3 layers'), r.log);
  assert.not.ok(await stored(env, 0), 'bottom layer must not be fetched');
});

test('a file whited out above the layer holding it: not found, as with the full image', async () => {
  const env = await freshEnv();
  const lazy = await buildFails(env, { dockerfile: `FROM scratch\nCOPY --from=${ref} /etc/gone.conf /x\n` }, 'not found', '/etc/gone.conf');
  assert.not.ok(await stored(env, 0), 'bottom layer must not be fetched');
  // The same COPY against the whole image (stored locally: the full path) fails the same way.
  const full = await freshEnv();
  await buildCase(full, { dockerfile: `FROM ${ref}\n` });
  assert.ok(await stored(full, 0));
  const whole = await buildFails(full, { dockerfile: `FROM scratch\nCOPY --from=${ref} /etc/gone.conf /x\n` }, 'not found');
  // Only the context directory in the Dockerfile location differs.
  const msg = (m: string) => m.replace(/^\S*Dockerfile:/, 'Dockerfile:');
  assert.is(msg(lazy), msg(whole));
});

test('an image index: the manifest of the platform is chosen, still only the top layer is fetched', async () => {
  // The index is assembled in a scratch store (it holds every blob) and pushed.
  const scratch = openContentStore(join(work, 'index-store'));
  const client = new RegistryClient();
  let target: string;
  try {
    const img = await pullImage(ref, { store: scratch, client, tag: false });
    const other = await writeImage(scratch, { config: { ...img.config, architecture: 'riscv64' }, layers: img.layers });
    const idx = await writeIndex(scratch, [{ ...img.descriptor, platform: hostPlatform() }, other.descriptor]);
    target = `${reg.host}/lazy/app:index`;
    await pushImage(scratch, idx.descriptor, target, { client });
  } finally {
    await client.close();
  }
  const env = await freshEnv();
  const r = await buildCase(env, { dockerfile: `FROM scratch\nCOPY --from=${target} /etc/app.conf /app.conf\n` });
  assert.is(await r.read('app.conf'), 'hello app\n');
  assert.ok(r.log.includes('used 1 of 3 layers'), r.log);
  assert.not.ok(await stored(env, 0), 'bottom layer must not be fetched');
});

test('wildcards, directories and symlinks take the full path', async () => {
  const env = await freshEnv();
  const r = await buildCase(env, { dockerfile: `FROM scratch\nCOPY --from=${ref} /etc/*.conf /glob/\n` });
  assert.ok(!r.log.includes('layers ('), r.log);
  assert.is(await r.read('glob/app.conf'), 'hello app\n');
  assert.is(await r.read('glob/mid.conf'), 'mid\n');
  assert.not.ok(await r.exists('glob/gone.conf'));
  assert.ok(await stored(env, 0), 'the full path pulls every layer');

  for (const [src, check] of [
    ['/etc', async (c: Awaited<ReturnType<typeof buildCase>>) => assert.is(await c.read('dst/mid.conf'), 'mid\n')],
    ['/etc/link.conf', async (c: Awaited<ReturnType<typeof buildCase>>) => assert.is(await c.read('dst'), 'hello app\n')],
  ] as const) {
    const e = await freshEnv();
    const c = await buildCase(e, { dockerfile: `FROM scratch\nCOPY --from=${ref} ${src} /dst\n` });
    assert.ok(!c.log.includes('layers ('), c.log);
    await check(c);
    assert.ok(await stored(e, 0), `${src}: the full path pulls every layer`);
  }
});

test.run();
