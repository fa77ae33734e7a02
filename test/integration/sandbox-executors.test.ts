/**
 * One suite, run against every executor that works on this host: bwrap,
 * runc (as root) and chroot. Each test runs a real process over a busybox
 * rootfs (test/helpers/rootfs.ts).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KilnError, ProcessError } from '../../src/errors.js';
import { BwrapExecutor } from '../../src/sandbox/bwrap.js';
import { ChrootExecutor } from '../../src/sandbox/chroot.js';
import { bwrapWorks } from '../../src/sandbox/host-profile.js';
import { RuncExecutor } from '../../src/sandbox/runc.js';
import type { Executor, MountSpec, RunRequest } from '../../src/sandbox/types.js';
import { which } from '../../src/util/which.js';
import { repoRoot } from '../helpers/repo.js';
import { makeRootfs } from '../helpers/rootfs.js';

const ROOT = { uid: 0, gid: 0, additionalGids: [] };

interface Result {
  stdout: string;
  stderr: string;
}

async function run(ex: Executor, rootfs: string, script: string, over: Partial<RunRequest> = {}, signal?: AbortSignal): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const req: RunRequest = {
    rootfs,
    args: ['/bin/sh', '-c', script],
    env: ['PATH=/bin'],
    cwd: '/',
    user: ROOT,
    network: 'host',
    mounts: [],
    onOutput: (s, c) => {
      if (s === 'stdout') stdout += c.toString();
      else stderr += c.toString();
    },
    ...over,
  };
  const timeout = AbortSignal.timeout(30_000);
  await ex.run(req, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  return { stdout, stderr };
}

function runDirs(): string[] {
  return ['/dev/shm', tmpdir()].flatMap((d) => (existsSync(d) ? readdirSync(d).filter((n) => n.startsWith(`kiln-run-${process.pid}-`)) : []));
}

function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker)) pids.push(Number(p));
    } catch {
      // exited
    }
  }
  return pids;
}

function defineSuite(name: string, make: () => Executor): void {
  const t = suite(`sandbox executor: ${name}`);
  let ex: Executor;
  let rootfs: string;
  t.before(async () => {
    ex = make();
    rootfs = await makeRootfs();
  });
  t.after(async () => {
    await rm(rootfs, { recursive: true, force: true });
  });

  t('runs a command and streams its output', async () => {
    const r = await run(ex, rootfs, 'echo hello; echo warn >&2');
    assert.is(r.stdout, 'hello\n');
    assert.is(r.stderr, 'warn\n');
  });

  t('a non-zero exit is a ProcessError in BuildKit wording with the last stderr lines', async () => {
    try {
      await run(ex, rootfs, 'echo out; for i in 1 2 3; do echo "line $i" >&2; done; exit 2', { display: '/bin/sh -c make' });
      assert.unreachable('should fail');
    } catch (err) {
      assert.instance(err, ProcessError);
      const e = err as ProcessError;
      assert.is(e.message, 'process "/bin/sh -c make" did not complete successfully: exit code: 2');
      assert.is(e.exitCode, 2);
      assert.equal(e.stderrTail, ['line 1', 'line 2', 'line 3']);
    }
    try {
      await run(ex, rootfs, 'exit 7');
      assert.unreachable('should fail');
    } catch (err) {
      assert.is((err as Error).message, 'process "/bin/sh -c exit 7" did not complete successfully: exit code: 7');
    }
  });

  t('the environment is req.env, plus HOME from /etc/passwd when missing (as runc and docker)', async () => {
    const r = await run(ex, rootfs, '', { args: ['/bin/env'], env: ['PATH=/bin', 'FOO=bar baz', 'EMPTY='] });
    assert.equal(r.stdout.trim().split('\n').sort(), ['EMPTY=', 'FOO=bar baz', 'HOME=/root', 'PATH=/bin']);
    const r2 = await run(ex, rootfs, '', { args: ['/bin/env'], env: ['HOME=/h', 'PWD=/set with space*'], user: { uid: 65534, gid: 65534, additionalGids: [] } });
    assert.equal(r2.stdout.trim().split('\n').sort(), ['HOME=/h', 'PWD=/set with space*']);
    const r3 = await run(ex, rootfs, '', { args: ['/bin/env'], env: [], user: { uid: 4242, gid: 0, additionalGids: [] } });
    assert.equal(r3.stdout.trim().split('\n'), ['HOME=/']);
  });

  t('shell-special variables reach the step intact and are never interpreted on the host', async () => {
    const marker = join(tmpdir(), `kiln-bashenv-${process.pid}-${name}`);
    const hostScript = `${marker}.sh`;
    await writeFile(hostScript, `touch ${marker}\n`);
    const env = [
      `BASH_ENV=${hostScript}`,
      `ENV=${hostScript}`,
      'SHELLOPTS=xtrace',
      `PS4=$(touch ${marker})`,
      'BASH_FUNC_exec%%=() { touch /tmp/x; }',
      'IFS=/',
      'dotted.name=1',
      'a-b=2',
      'LD_PRELOAD=/nonexistent/kiln-evil.so',
      'LD_LIBRARY_PATH=/nonexistent',
      'PATH=/bin',
    ];
    try {
      const r = await run(ex, rootfs, '', { args: ['/bin/env'], env, user: { uid: 1000, gid: 1000, additionalGids: [] } });
      assert.not.ok(existsSync(marker), 'the host ran code from the step environment');
      assert.not.match(r.stderr, /kiln-evil|preload/i, 'a host program or helper loaded LD_PRELOAD');
      assert.equal(r.stdout.trim().split('\n').filter((l) => !l.startsWith('HOME=')).sort(), [...env].sort());
      assert.is(r.stderr, '');
    } finally {
      await rm(hostScript, { force: true });
      await rm(marker, { force: true });
    }
  });

  t('cwd is created when missing and kept in the rootfs', async () => {
    const r = await run(ex, rootfs, 'pwd', { cwd: '/work/a/b' });
    assert.is(r.stdout, '/work/a/b\n');
    assert.ok((await stat(join(rootfs, 'work/a/b'))).isDirectory());
  });

  t('cwd through a symlink stays inside the rootfs; /proc/self/fd is refused', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'kiln-outside-'));
    await symlink(`../../../../../../../..${outside}`, join(rootfs, 'up'));
    try {
      const r = await run(ex, rootfs, 'pwd', { cwd: '/up/work' });
      assert.is(r.stdout, `${outside}/work\n`);
      assert.not.ok(existsSync(join(outside, 'work')), 'created on the host');
      assert.ok(existsSync(join(rootfs, outside, 'work')));
      for (const cwd of ['/proc/self/fd/3', '/proc/self/cwd', '/dev/fd/1']) {
        try {
          await run(ex, rootfs, 'pwd', { cwd });
          assert.unreachable(`${cwd} accepted`);
        } catch (err) {
          assert.instance(err, KilnError);
          assert.is((err as KilnError).code, 'WORKDIR_ESCAPE');
        }
      }
    } finally {
      await rm(outside, { recursive: true, force: true });
      await rm(join(rootfs, 'up'));
      await rm(join(rootfs, outside), { recursive: true, force: true });
    }
  });

  t('runs as the requested uid, gid and supplementary groups, with docker default capabilities', async () => {
    const r = await run(ex, rootfs, 'id -u; id -g; id -G; grep CapEff /proc/self/status', { user: { uid: 1000, gid: 1000, additionalGids: [10, 20] } });
    assert.equal(r.stdout.trim().split('\n').slice(0, 3), ['1000', '1000', '1000 10 20']);
    assert.match(r.stdout, /CapEff:\s+0{16}/);
    const root = await run(ex, rootfs, 'id -u; id -G; grep CapBnd /proc/self/status');
    assert.equal(root.stdout.trim().split('\n').slice(0, 2), ['0', '0']);
    assert.match(root.stdout, /CapBnd:\s+00000000a80425fb/);
  });

  t('files written as root and as a user get real ownership in the rootfs', async () => {
    await run(ex, rootfs, 'touch /tmp/by-root; chown 1000:1000 /tmp/by-root; mkdir -p /home/u; chown 65534:65534 /home/u');
    await run(ex, rootfs, 'touch /home/u/mine', { user: { uid: 65534, gid: 65534, additionalGids: [] } });
    const a = await stat(join(rootfs, 'tmp/by-root'));
    const b = await stat(join(rootfs, 'home/u/mine'));
    assert.equal([a.uid, a.gid, b.uid, b.gid], [1000, 1000, 65534, 65534]);
  });

  t('a fresh /proc and a minimal /dev', async () => {
    const r = await run(
      ex,
      rootfs,
      'for d in null zero full random urandom tty; do test -c /dev/$d || echo "no $d"; done; test -d /dev/pts || echo no pts; ' +
        'echo x > /dev/shm/x && echo shm ok; echo $$; cat /proc/1/cmdline | tr "\\0" " "; echo; ls /dev | grep -E "^(sda|vda|nvme|kmsg|mem)" || echo "host devices: none"; head -c 4 /dev/zero | wc -c',
    );
    assert.not.match(r.stdout, /^no /m);
    assert.match(r.stdout, /shm ok/);
    assert.match(r.stdout, /host devices: none/);
    assert.match(r.stdout, /\n4\n$/);
    // A new pid namespace: the host's init is not pid 1.
    assert.not.match(r.stdout, /systemd|\/sbin\/init/);
  });

  t('/etc/hosts and /etc/resolv.conf are supplied and never left in the rootfs', async () => {
    const etc = join(rootfs, 'etc');
    const before = await stat(etc);
    const r = await run(ex, rootfs, 'cat /etc/hosts; echo --; cat /etc/resolv.conf; hostname', { hostname: 'kilnhost' });
    assert.match(r.stdout, /127\.0\.0\.1\s+localhost kilnhost/);
    assert.match(r.stdout, /--\n[\s\S]*\nkilnhost\n$/);
    assert.not.ok(existsSync(join(etc, 'hosts')));
    assert.not.ok(existsSync(join(etc, 'resolv.conf')));
    assert.is((await stat(etc)).mtimeMs, before.mtimeMs);
    // An image's own files stay untouched under the mount.
    await writeFile(join(etc, 'hosts'), 'image hosts\n');
    try {
      const r2 = await run(ex, rootfs, 'cat /etc/hosts');
      assert.match(r2.stdout, /localhost/);
      assert.is(await readFile(join(etc, 'hosts'), 'utf8'), 'image hosts\n');
    } finally {
      await rm(join(etc, 'hosts'));
    }
    // No /etc at all: the placeholder directory goes too; no /proc or /dev placeholders either.
    const bare = await mkdtemp(join(tmpdir(), 'kiln-bare-'));
    try {
      await mkdir(join(bare, 'bin'));
      execFileSync('cp', ['/bin/busybox', join(bare, 'bin/sh')]);
      await chmod(bare, 0o755);
      await run(ex, bare, 'test -s /etc/hosts');
      assert.equal(readdirSync(bare), ['bin']);
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });

  t('network none has only a loopback interface; host has the host interfaces', async () => {
    const none = await run(ex, rootfs, 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "', { network: 'none' });
    assert.equal(none.stdout.trim().split('\n'), ['lo']);
    const host = await run(ex, rootfs, 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort');
    const hostIfs = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
    assert.equal(host.stdout.trim().split('\n'), hostIfs);
  });

  t('mounts: bind ro and rw, tmpfs with size, file', async () => {
    const src = await mkdtemp(join(tmpdir(), 'kiln-bind-'));
    await writeFile(join(src, 'in.txt'), 'from host\n');
    try {
      const mounts: MountSpec[] = [
        { type: 'bind', source: src, target: '/ro', readonly: true },
        { type: 'bind', source: src, target: '/rw', readonly: false },
        { type: 'tmpfs', target: '/scratch', sizeBytes: 1024 * 1024 },
        { type: 'file', target: '/run/secrets/token', content: Buffer.from('s3cret'), mode: 0o400, uid: 1000, gid: 1000 },
      ];
      const r = await run(
        ex,
        rootfs,
        'cat /ro/in.txt; touch /ro/x 2>/dev/null && echo ro-writable; echo new > /rw/out.txt; echo t > /scratch/t && echo tmpfs ok; ' +
          'dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>/dev/null || echo tmpfs full; stat -c "%a %u %g" /run/secrets/token; cat /run/secrets/token; echo',
        { mounts },
      );
      assert.is(r.stdout, 'from host\ntmpfs ok\ntmpfs full\n400 1000 1000\ns3cret\n');
      assert.is(await readFile(join(src, 'out.txt'), 'utf8'), 'new\n');
      assert.not.ok(existsSync(join(src, 'x')));
      for (const p of ['ro', 'rw', 'scratch', 'run']) assert.not.ok(existsSync(join(rootfs, p)), `placeholder /${p} left behind`);
    } finally {
      await rm(src, { recursive: true, force: true });
    }
  });

  t('mount targets through a symlink stay inside the rootfs', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'kiln-outside-'));
    await symlink(outside, join(rootfs, 'evil'));
    try {
      await run(ex, rootfs, 'test -f /evil/secret', { mounts: [{ type: 'file', target: '/evil/secret', content: Buffer.from('x') }] });
      assert.equal(readdirSync(outside), []);
      assert.ok((await lstat(join(rootfs, 'evil'))).isSymbolicLink());
      assert.not.ok(existsSync(join(rootfs, outside)), 'placeholder left behind');
    } finally {
      await rm(join(rootfs, 'evil'));
      await rm(outside, { recursive: true, force: true });
    }
  });

  t('no file descriptors leak into the step, not even those kiln inherited', async () => {
    // A kiln process started with two extra open fds (3 and 4, not close-on-exec) runs the step.
    const runner = join(rootfs, '..', `kiln-fds-${process.pid}-${name}.mjs`);
    const cls = { bwrap: 'BwrapExecutor', runc: 'RuncExecutor', chroot: 'ChrootExecutor' }[name as 'bwrap'];
    await writeFile(
      runner,
      `import { readdirSync } from 'node:fs';\nimport { ${cls} } from ${JSON.stringify(join(repoRoot, 'dist/src/sandbox', `${name}.js`))};\n` +
        `process.stderr.write('kiln fds: ' + readdirSync('/proc/self/fd').join(' ') + '\\n');\n` +
        `await new ${cls}().run({ rootfs: ${JSON.stringify(rootfs)}, args: ['/bin/ls', '/proc/self/fd'], env: ['PATH=/bin'], cwd: '/', ` +
        `user: { uid: 0, gid: 0, additionalGids: [] }, network: 'host', mounts: [], onOutput: (_s, c) => process.stdout.write(c) }, {});\n`,
    );
    try {
      const r = spawnSync(process.execPath, [runner], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], timeout: 30_000 });
      assert.is(r.status, 0, r.stderr.toString());
      const kilnFds = /kiln fds: (.*)/.exec(r.stderr.toString())![1]!.split(' ');
      assert.ok(kilnFds.includes('3') && kilnFds.includes('4'), kilnFds.join(' '));
      // 0-2, plus the fd ls reads /proc/self/fd with.
      assert.equal(r.stdout.toString().split(/\s+/).filter(Boolean).sort(), ['0', '1', '2', '3']);
    } finally {
      await rm(runner, { force: true });
    }
  });

  t('abort kills the whole process tree and leaves nothing behind', async () => {
    const marker = `9${Math.floor(Math.random() * 1e6)}.5`;
    const dirsBefore = runDirs();
    const ac = new AbortController();
    const started = Date.now();
    const p = run(ex, rootfs, `sleep ${marker} & (sleep ${marker} & sleep ${marker}) & echo started; wait`, {
      onOutput: (_s, c) => {
        if (c.toString().includes('started')) setTimeout(() => ac.abort(new Error('interrupted')), 100);
      },
    }, ac.signal);
    try {
      await p;
      assert.unreachable('should be aborted');
    } catch (err) {
      assert.is((err as Error).message, 'interrupted');
    }
    assert.ok(Date.now() - started < 10_000);
    for (let i = 0; i < 50 && processesWith(marker).length; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(processesWith(marker), [], 'sleep processes survived');
    assert.equal(runDirs().filter((d) => !dirsBefore.includes(d)), [], 'temp dirs left behind');
    assert.not.ok(existsSync(join(rootfs, 'etc/hosts')));
    assert.not.ok(existsSync(join(rootfs, 'proc')));
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    assert.not.ok(mounts.includes(rootfs), 'mount left behind');
  });

  t('if kiln itself is killed (SIGKILL), the step dies with it', async () => {
    const marker = `8${Math.floor(Math.random() * 1e6)}.5`;
    const script = join(rootfs, '..', `kiln-kill-${process.pid}-${name}.mjs`);
    const mod = join(repoRoot, 'dist/src/sandbox', `${name}.js`);
    const cls = { bwrap: 'BwrapExecutor', runc: 'RuncExecutor', chroot: 'ChrootExecutor' }[name as 'bwrap'];
    await writeFile(
      script,
      `import { ${cls} } from ${JSON.stringify(mod)};\n` +
        `await new ${cls}().run({ rootfs: ${JSON.stringify(rootfs)}, args: ['/bin/sh', '-c', 'sleep ${marker} & sleep ${marker} & echo started; wait'], env: ['PATH=/bin'], cwd: '/', ` +
        `user: { uid: 0, gid: 0, additionalGids: [] }, network: 'host', mounts: [], onOutput: (_s, c) => process.stdout.write(c) }, {});\n`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('step did not start')), 20_000);
        child.stdout!.on('data', (c: Buffer) => {
          if (c.toString().includes('started')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', () => reject(new Error('runner exited early')));
      });
      assert.ok(processesWith(marker).length >= 2);
      child.kill('SIGKILL');
      for (let i = 0; i < 100 && processesWith(marker).length; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(processesWith(marker), [], 'the step outlived kiln');
    } finally {
      child.kill('SIGKILL');
      await rm(script, { force: true });
      // kiln could not clean up: do it for the next tests (the next kiln sweeps /dev/shm itself).
      for (const p of ['etc/hosts', 'etc/resolv.conf', 'proc', 'dev']) await rm(join(rootfs, p), { recursive: true, force: true });
      for (const d of ['/dev/shm', tmpdir()]) {
        for (const n of existsSync(d) ? readdirSync(d).filter((x) => x.startsWith(`kiln-run-${child.pid}-`)) : []) await rm(join(d, n), { recursive: true, force: true });
      }
      if (name === 'runc') {
        for (const ctl of readdirSync('/sys/fs/cgroup')) {
          const dir = join('/sys/fs/cgroup', ctl);
          for (const n of existsSync(dir) ? readdirSync(dir).filter((x) => x.startsWith(`kiln-${child.pid}-`)) : []) await rm(join(dir, n), { recursive: false }).catch(() => spawnSync('rmdir', [join(dir, n)]));
        }
      }
    }
  });

  t.run();
}

const canBwrap = which('bwrap') !== undefined && (await bwrapWorks()).ok;
const isRoot = process.getuid?.() === 0;
if (canBwrap) {
  defineSuite('bwrap', () => new BwrapExecutor());
  const b = suite('sandbox executor: bwrap setup failures');
  b('a failure of bwrap itself is SANDBOX_SETUP, not the step failing', async () => {
    const rootfs = await makeRootfs();
    try {
      await run(new BwrapExecutor(), rootfs, 'true', { hostname: 'h'.repeat(100) });
      assert.unreachable('should fail');
    } catch (err) {
      assert.instance(err, KilnError);
      assert.not.instance(err, ProcessError);
      assert.is((err as KilnError).code, 'SANDBOX_SETUP');
      assert.match((err as Error).message, /^Cannot start the sandbox for "\/bin\/sh -c true": bwrap: /);
    } finally {
      await rm(rootfs, { recursive: true, force: true });
    }
  });
  b.run();
}
if (isRoot && which('runc')) defineSuite('runc', () => new RuncExecutor());
if (isRoot) defineSuite('chroot', () => new ChrootExecutor());
if (!canBwrap && !isRoot) {
  const t = suite('sandbox executors');
  t('at least one executor works on this host', () => assert.unreachable('neither bwrap nor root: no executor to test'));
  t.run();
}
