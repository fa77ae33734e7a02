// The test infrastructure itself: the registry helper and the busybox fixture, checked with
// independent tools (skopeo, umoci, tar) so every other integration test can trust them.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BUSYBOX_GROUP, BUSYBOX_PASSWD, BUSYBOX_PATH_ENV, ensureBusyboxLayout, pushBusybox, pushFixture, skopeoInspect } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { DOCKER_CLI, DOCKERD_BIN, dockerdUnavailableReason, startDockerd } from '../helpers/dockerd.js';
import { existsSync } from 'node:fs';

const run = promisify(execFile);
const test = suite<{ reg?: TestRegistry }>('infra');

test.before(async (ctx) => {
  ctx.reg = await startRegistry();
});
test.after(async (ctx) => {
  await ctx.reg?.stop();
});

test('registry answers /v2/ on 127.0.0.1 and stop() kills it', async () => {
  const reg = await startRegistry();
  assert.match(reg.host, /^127\.0\.0\.1:\d+$/);
  const res = await fetch(`${reg.url}/v2/`);
  assert.is(res.status, 200);
  await res.arrayBuffer();
  await reg.stop();
  let refused = false;
  try {
    await fetch(`${reg.url}/v2/`, { signal: AbortSignal.timeout(2000) });
  } catch {
    refused = true;
  }
  assert.ok(refused, 'registry still answers after stop()');
});

test('extraConfig is applied (an auth section makes /v2/ answer 401)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-infra-'));
  const reg = await startRegistry({ extraConfig: 'auth:\n  silly:\n    realm: kiln-test\n    service: kiln\n' });
  try {
    const res = await fetch(`${reg.url}/v2/`);
    assert.is(res.status, 401);
    await res.arrayBuffer();
  } finally {
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('busybox layout is deterministic and cached', async () => {
  const a = await ensureBusyboxLayout();
  const b = await ensureBusyboxLayout();
  assert.is(a, b);
  const index = JSON.parse(await readFile(join(a, 'index.json'), 'utf8'));
  assert.is(index.manifests.length, 1);
  assert.is(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'latest');
});

test('busybox pushes and skopeo shows the expected config', async (ctx) => {
  const ref = await pushBusybox(ctx.reg!);
  assert.is(ref, `${ctx.reg!.host}/busybox:latest`);
  const cfg = await skopeoInspect(ref, 'config');
  assert.equal(cfg.config.Env, [BUSYBOX_PATH_ENV]);
  assert.equal(cfg.config.Cmd, ['sh']);
  assert.is(cfg.os, 'linux');
  assert.is(cfg.rootfs.diff_ids.length, 1);
  const summary = await skopeoInspect(ref);
  assert.is(summary.Layers.length, 1);
  const raw = await skopeoInspect(ref, 'raw');
  assert.is(raw.mediaType, 'application/vnd.oci.image.manifest.v1+json');
});

test('pushFixture can convert to Docker schema 2 under another name', async (ctx) => {
  const ref = await pushFixture(ctx.reg!, 'busybox', { repo: 'library/bb', tag: 'v2', format: 'v2s2' });
  const raw = await skopeoInspect(ref, 'raw');
  assert.is(raw.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
});

test('busybox rootfs (unpacked by umoci) matches the Conventions', async () => {
  const layout = await ensureBusyboxLayout();
  const work = await mkdtemp(join(tmpdir(), 'kiln-infra-'));
  try {
    // umoci refuses to touch a layout it cannot lock read-only; copy to scratch first.
    await run('cp', ['-a', layout, join(work, 'oci')]);
    await run('umoci', ['raw', 'unpack', '--rootless', '--image', `${join(work, 'oci')}:latest`, join(work, 'rootfs')], { timeout: 60_000 });
    const root = join(work, 'rootfs');
    assert.is(await readFile(join(root, 'etc/passwd'), 'utf8'), BUSYBOX_PASSWD);
    assert.is(await readFile(join(root, 'etc/group'), 'utf8'), BUSYBOX_GROUP);
    assert.is((await stat(join(root, 'tmp'))).mode & 0o7777, 0o1777);
    assert.ok((await stat(join(root, 'root'))).isDirectory());
    const bb = await stat(join(root, 'bin/busybox'));
    for (const applet of ['sh', 'awk', 'stat', 'id', 'sha256sum', 'ls', 'mkdir', 'cat', 'env']) {
      const st = await lstat(join(root, 'bin', applet));
      assert.is(st.ino, bb.ino, `/bin/${applet} is not a hard link to /bin/busybox`);
    }
    // The rootfs really runs: the applets work through /bin/sh.
    const { stdout } = await run(join(root, 'bin/sh'), ['-c', 'echo ok; id -u'], { timeout: 10_000, env: { PATH: '/bin' } });
    assert.is(stdout, 'ok\n0\n');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('dockerd helper: reports why it cannot run, or runs the busybox fixture', async (ctx) => {
  const installed = existsSync(DOCKERD_BIN) && existsSync(DOCKER_CLI);
  const why = dockerdUnavailableReason();
  if (process.getuid?.() !== 0) assert.match(why ?? '', /root/);
  else if (!installed) assert.match(why ?? '', /docker\.io is not installed/);
  else assert.is(why, undefined);
  const d = await startDockerd({ timeoutMs: 60_000 });
  if (!d.ok) {
    assert.ok(why, `dockerd could be tried here but did not start: ${d.reason}`);
    assert.is(d.reason, why);
    return;
  }
  try {
    const ref = await pushBusybox(ctx.reg!);
    const { stdout } = await d.docker(['run', '--rm', '--network', 'none', ref, 'sh', '-c', 'id -u; stat -c %a /tmp; echo $PATH'], { timeoutMs: 120_000 });
    assert.is(stdout, `0\n1777\n${BUSYBOX_PATH_ENV.slice('PATH='.length)}\n`);
  } finally {
    await d.stop();
  }
});

test.run();
