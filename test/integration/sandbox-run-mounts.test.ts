/**
 * RUN --mount through a real executor (the one `auto` picks here): caches kept
 * between builds with their sharing modes, secrets on tmpfs and never in the
 * rootfs, bind sources resolved inside their own root (regression tests for
 * the 2024 BuildKit/Buildah mount CVEs), rw binds discarded, ssh forwarding.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KilnError } from '../../src/errors.js';
import { prepareRunMounts, type RunMountContext, type RunMountInput } from '../../src/sandbox/run-mounts.js';
import { selectExecutor } from '../../src/sandbox/select-executor.js';
import type { Executor, RunRequest } from '../../src/sandbox/types.js';
import { makeRootfs } from '../helpers/rootfs.js';

let ex: Executor;
let rootfs: string;
let kilnRoot: string;
let context: string;

test.before(async () => {
  ex = (await selectExecutor('auto')).executor;
  rootfs = await makeRootfs();
  kilnRoot = await mkdtemp(join(tmpdir(), 'kiln-root-'));
  context = await mkdtemp(join(tmpdir(), 'kiln-ctx-'));
  await writeFile(join(context, 'app.txt'), 'context file\n');
  await mkdir(join(context, 'src'));
  await writeFile(join(context, 'src/main.c'), 'int main(){}\n');
});
test.after(async () => {
  for (const d of [rootfs, kilnRoot, context]) await rm(d, { recursive: true, force: true });
});

async function runWith(inputs: RunMountInput[], script: string, ctx: Partial<RunMountContext> = {}, over: Partial<RunRequest> = {}): Promise<string> {
  const rm = await prepareRunMounts(inputs, { kilnRoot, ...ctx });
  let out = '';
  try {
    await ex.run(
      {
        rootfs,
        args: ['/bin/sh', '-c', script],
        env: ['PATH=/bin', ...rm.env],
        cwd: '/',
        user: { uid: 0, gid: 0, additionalGids: [] },
        network: 'none',
        mounts: rm.mounts,
        onOutput: (_s, c) => (out += c.toString()),
        ...over,
      },
      { signal: AbortSignal.timeout(30_000) },
    );
  } finally {
    await rm.release();
  }
  return out;
}

async function fails(p: Promise<unknown>, code: string): Promise<KilnError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, KilnError);
    assert.is((err as KilnError).code, code, (err as Error).message);
    return err as KilnError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('type=cache persists between builds under $KILN_ROOT/cache-mounts, with mode/uid/gid', async () => {
  const cache: RunMountInput = { type: 'cache', target: '/root/.cache', id: 'pkgs', mode: 0o750, uid: 1000, gid: 1000 };
  await runWith([cache], 'echo one >> /root/.cache/log');
  const out = await runWith([cache], 'echo two >> /root/.cache/log; cat /root/.cache/log; stat -c "%a %u %g" /root/.cache');
  assert.is(out, 'one\ntwo\n750 1000 1000\n');
  assert.not.ok(existsSync(join(rootfs, 'root/.cache')), 'cache contents in the rootfs');
  assert.ok(readdirSync(join(kilnRoot, 'cache-mounts')).length >= 1);
  // Another id is another cache.
  assert.is(await runWith([{ type: 'cache', target: '/root/.cache', id: 'other' }], 'ls /root/.cache | wc -l'), '0\n');
});

test('type=cache sharing=locked serialises steps; private gives a busy cache\'s second user its own', async () => {
  // Concurrent steps, each on its own rootfs (as the build engine runs them).
  const other = await makeRootfs();
  const locked: RunMountInput = { type: 'cache', target: '/c', id: 'lk', sharing: 'locked' };
  const script = 'echo start >> /c/log; sleep 0.3; echo end >> /c/log';
  await Promise.all([runWith([locked], script), runWith([locked], script, {}, { rootfs: other })]);
  const log = await runWith([locked], 'cat /c/log');
  assert.is(log, 'start\nend\nstart\nend\n');

  const priv: RunMountInput = { type: 'cache', target: '/c', id: 'pv', sharing: 'private' };
  const outs = await Promise.all([runWith([priv], 'echo a > /c/mine; sleep 0.3; ls /c'), runWith([priv], 'sleep 0.1; echo b > /c/theirs; ls /c', {}, { rootfs: other })]);
  assert.equal(outs, ['mine\n', 'theirs\n']);
  await rm(other, { recursive: true, force: true });
});

test('type=cache from/source seeds a new cache from inside its root', async () => {
  const out = await runWith([{ type: 'cache', target: '/seed', id: 'seeded', fromRoot: context, source: 'src' }], 'cat /seed/main.c');
  assert.is(out, 'int main(){}\n');
});

test('type=secret: a file on tmpfs, never in the rootfs; env=; required', async () => {
  const secretFile = join(context, '..', `kiln-secret-${process.pid}`);
  await writeFile(secretFile, 'TOPSECRET-42');
  try {
    const out = await runWith(
      [{ type: 'secret', id: 'tok' }, { type: 'secret', id: 'api', env: 'API_TOKEN' }],
      'cat /run/secrets/tok; echo; stat -c "%a %u" /run/secrets/tok; grep " /run/secrets/tok " /proc/mounts | cut -d" " -f3; echo "$API_TOKEN"; test -e /run/secrets/api || echo no-api-file',
      { secrets: [{ id: 'tok', src: secretFile }, { id: 'api', env: 'KILN_TEST_API' }], env: { KILN_TEST_API: 'env-secret' } },
    );
    assert.is(out.split('\n')[0], 'TOPSECRET-42');
    assert.is(out.split('\n')[1], '400 0');
    assert.match(out.split('\n')[2]!, /^(tmpfs|shm)$/);
    assert.match(out, /env-secret\nno-api-file\n$/);
    assert.not.ok(existsSync(join(rootfs, 'run')), 'secret mountpoint left in the rootfs');
    // Not required and missing: skipped. Required and missing: BuildKit's error.
    assert.is(await runWith([{ type: 'secret', id: 'nope' }], 'test -e /run/secrets/nope || echo absent'), 'absent\n');
    const err = await fails(runWith([{ type: 'secret', id: 'nope', required: true }], 'true'), 'SECRET_NOT_FOUND');
    assert.is(err.message, 'secret nope: not found');
  } finally {
    await rm(secretFile, { force: true });
  }
});

test('type=bind is read-only; rw writes are discarded', async () => {
  const out = await runWith([{ type: 'bind', target: '/ctx', fromRoot: context }], 'cat /ctx/app.txt; touch /ctx/new 2>/dev/null || echo read-only');
  assert.is(out, 'context file\nread-only\n');
  await runWith([{ type: 'bind', target: '/ctx', fromRoot: context, readwrite: true }], 'echo changed > /ctx/app.txt; touch /ctx/new');
  assert.is(await readFile(join(context, 'app.txt'), 'utf8'), 'context file\n');
  assert.not.ok(existsSync(join(context, 'new')));
  assert.equal(readdirSync(join(kilnRoot, 'tmp')), [], 'rw copy left behind');
});

test('CVE-2024-1753 (Buildah): a bind source with ".." cannot leave the context', async () => {
  const out = await runWith([{ type: 'bind', target: '/x', fromRoot: context, source: '../../../../../../' }], 'ls /x | sort');
  assert.is(out, 'app.txt\nsrc\n');
  await fails(runWith([{ type: 'bind', target: '/x', fromRoot: context, source: '../../../../etc/passwd' }], 'true'), 'MOUNT_SOURCE');
});

test('BuildKit/Buildah mount CVEs: a symlink in the source pointing out resolves inside its root', async () => {
  await symlink('/etc', join(context, 'abs-link'));
  await symlink('../../../../../../../etc', join(context, 'rel-link'));
  await symlink('/', join(context, 'root-link'));
  try {
    await fails(runWith([{ type: 'bind', target: '/x', fromRoot: context, source: 'abs-link/passwd' }], 'true'), 'MOUNT_SOURCE');
    await fails(runWith([{ type: 'bind', target: '/x', fromRoot: context, source: 'rel-link/shadow' }], 'true'), 'MOUNT_SOURCE');
    const out = await runWith([{ type: 'bind', target: '/x', fromRoot: context, source: 'root-link' }], 'ls /x | sort');
    assert.match(out, /^abs-link\napp.txt\n/);
    assert.not.match(out, /\betc\b/);
    await fails(runWith([{ type: 'cache', target: '/c', id: 'cve', fromRoot: context, source: 'abs-link' }], 'true'), 'MOUNT_SOURCE');
  } finally {
    for (const l of ['abs-link', 'rel-link', 'root-link']) await rm(join(context, l));
  }
});

test('CVE-2024-23652 (BuildKit): a step that swaps a mountpoint\'s parent for a symlink cannot make cleanup delete host files', async () => {
  const victim = await mkdtemp(join(tmpdir(), 'kiln-victim-'));
  await mkdir(join(victim, 'secrets'));
  await writeFile(join(victim, 'secrets', 'tok'), '');
  try {
    await runWith(
      [{ type: 'secret', id: 'tok' }],
      `mv /run /run.moved 2>/dev/null || cp -a /run /run.moved; rm -rf /run 2>/dev/null; ln -s ${victim} /run 2>/dev/null; ls -la /run >/dev/null 2>&1; true`,
      { secrets: [{ id: 'tok', env: 'KILN_TEST_TOK' }], env: { KILN_TEST_TOK: 'x' } },
    );
    assert.ok(existsSync(join(victim, 'secrets', 'tok')), 'host file deleted by cleanup');
    assert.ok((await stat(join(victim, 'secrets'))).isDirectory());
  } finally {
    await rm(victim, { recursive: true, force: true });
    await rm(join(rootfs, 'run'), { recursive: true, force: true });
    await rm(join(rootfs, 'run.moved'), { recursive: true, force: true });
  }
});

test('type=tmpfs with size; type=ssh forwards the agent socket', async () => {
  const out = await runWith([{ type: 'tmpfs', target: '/t', sizeBytes: 65536 }], 'grep " /t " /proc/mounts | cut -d" " -f3; dd if=/dev/zero of=/t/f bs=1024 count=128 2>/dev/null || echo full');
  assert.is(out, 'tmpfs\nfull\n');
  const sockDir = await mkdtemp(join(tmpdir(), 'kiln-ssh-'));
  const sock = join(sockDir, 'agent.sock');
  const server = createServer((c) => c.end('agent-hello\n'));
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const o = await runWith([{ type: 'ssh' }], 'test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK"', { ssh: { default: sock } });
    assert.is(o, '/run/buildkit/ssh_agent.0\n');
    await fails(runWith([{ type: 'ssh', required: true }], 'true'), 'SSH_NOT_FOUND');
  } finally {
    server.close();
    await rm(sockDir, { recursive: true, force: true });
  }
});

test.run();
