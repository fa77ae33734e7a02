/**
 * Host profiles, for real: a non-root user created by the test (useradd, with a
 * subuid/subgid range) builds in kiln's user namespace and gets real ownership;
 * a user without a range gets the single-id namespace and a clear failure on
 * chown; and inside `bwrap --unshare-user --disable-userns` (no user
 * namespaces) auto picks chroot and says so. Runs the compiled probe under
 * dist/ (npm run build first). Needs root to create users.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, chown, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from '../helpers/repo.js';

const dist = join(repoRoot, 'dist');

const PROBE = `
import { ensureBuildNamespace } from ${JSON.stringify(join(dist, 'src/sandbox/userns.js'))};
import { selectExecutor } from ${JSON.stringify(join(dist, 'src/sandbox/select-executor.js'))};
import { detectHostProfile } from ${JSON.stringify(join(dist, 'src/sandbox/host-profile.js'))};
import { makeRootfs } from ${JSON.stringify(join(dist, 'test/helpers/rootfs.js'))};
import { chownSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const [mode, dir, script, as] = process.argv.slice(2);
const [uid, gid, ...groups] = (as ?? '0:0').split(':').map(Number);
if (mode !== 'no-ensure') await ensureBuildNamespace(process.argv.slice(2), { entry: fileURLToPath(import.meta.url), ownIdMaps: mode === 'ensure-own-maps' });
let nodeChown = 'ok';
try { writeFileSync(dir + '/node-owned', ''); chownSync(dir + '/node-owned', 1000, 1000); } catch (e) { nodeChown = e.code; }
const capEff = readFileSync('/proc/self/status', 'utf8').match(/CapEff:\\s*(\\S+)/)[1];
const profile = await detectHostProfile();
const { executor, notice } = await selectExecutor('auto');
const rootfs = existsSync(dir + '/rootfs/bin/busybox') ? dir + '/rootfs' : await makeRootfs(dir + '/rootfs');
let out = '', error;
try {
  await executor.run({ rootfs, args: ['/bin/sh', '-c', script], env: ['PATH=/bin'], cwd: '/', user: { uid, gid, additionalGids: groups },
    network: 'none', mounts: [], onOutput: (_s, c) => (out += c) }, { signal: AbortSignal.timeout(30000) });
} catch (e) { error = { message: e.message, stderrTail: e.stderrTail }; }
const own = (p) => { try { const s = statSync(rootfs + p); return [s.uid, s.gid]; } catch { return null; } };
console.log(JSON.stringify({ nodeChown, capEff, uid: process.getuid(), profile: profile.kind, executor: executor.name, notice, out, error,
  a: own('/a'), b: own('/b'), uidMap: (await import('node:fs')).readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\\s+/) }));
`;

interface ProbeResult {
  nodeChown: string;
  capEff: string;
  uid: number;
  profile: string;
  executor: string;
  notice?: string;
  out: string;
  error?: { message: string; stderrTail: string[] };
  a: [number, number] | null;
  b: [number, number] | null;
  uidMap: string[];
}

function parseProbe(r: ReturnType<typeof spawnSync>): ProbeResult {
  const stdout = r.stdout.toString();
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ProbeResult;
  } catch {
    throw new Error(`probe failed (status ${r.status}, signal ${r.signal}):\n${stdout}\n${r.stderr.toString()}`);
  }
}

const t = suite('sandbox host profiles');
const isRoot = process.getuid?.() === 0;
let work: string;
let probe: string;
const users: string[] = [];

function makeUser(subStart?: number): { name: string; uid: number; gid: number; home: string } {
  const name = `kilnrt${process.pid % 10000}${users.length}`;
  execFileSync('useradd', ['-m', '-s', '/bin/sh', name]);
  users.push(name);
  // useradd may allocate a range itself (SUB_UID_MIN in login.defs): start from none.
  execFileSync('usermod', ['--del-subuids', '1-4294967294', '--del-subgids', '1-4294967294', name]);
  if (subStart !== undefined) {
    execFileSync('usermod', ['--add-subuids', `${subStart}-${subStart + 65535}`, '--add-subgids', `${subStart}-${subStart + 65535}`, name]);
  }
  const uid = Number(execFileSync('id', ['-u', name]).toString());
  const gid = Number(execFileSync('id', ['-g', name]).toString());
  return { name, uid, gid, home: `/home/${name}` };
}

function runAs(user: { uid: number; gid: number; home: string }, dir: string, script: string, as = '0:0', mode = 'ensure') {
  return spawnSync('setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', process.execPath, probe, mode, dir, script, as], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: user.home },
    cwd: dir,
    timeout: 60_000,
  });
}

interface DoctorJson {
  profile: { kind: string; features: { id: string; ok: boolean; fix?: string }[] };
  isolation: { executor?: string; notice?: string; error?: string };
}

function doctorAs(user: { uid: number; gid: number; home: string }): DoctorJson {
  const r = spawnSync('setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', process.execPath, join(dist, 'src/cli/kiln.js'), 'doctor', '--json'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: user.home },
    cwd: '/',
    timeout: 60_000,
  });
  try {
    return JSON.parse(r.stdout.toString()) as DoctorJson;
  } catch {
    throw new Error(`kiln doctor failed (${r.status}): ${r.stdout}${r.stderr}`);
  }
}

t.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-rootless-'));
  await chmod(work, 0o755);
  probe = join(work, 'probe.mjs');
  await writeFile(probe, PROBE);
  await chmod(probe, 0o644);
});
t.after(async () => {
  for (const u of users) {
    spawnSync('usermod', ['--del-subuids', '1-4294967294', '--del-subgids', '1-4294967294', u]);
    spawnSync('userdel', ['-r', '-f', u], { stdio: 'ignore' });
  }
  await rm(work, { recursive: true, force: true });
});

t('the probe runs from the compiled tree', () => {
  assert.ok(existsSync(join(dist, 'src/sandbox/userns.js')), 'run npm run build first');
  assert.ok(isRoot, 'these tests create users: run them as root');
});

t('rootless with a subuid range: root in the build namespace, chown to 1000 and 65534 lands on the mapped host ids', async () => {
  const start = 400000 + (process.pid % 50) * 65536;
  const user = makeUser(start);
  const dir = join(work, 'subuid');
  execFileSync('mkdir', ['-p', dir]);
  await chown(dir, user.uid, user.gid);
  const r = runAs(user, dir, 'touch /a /b; chown 1000:1000 /a; chown 65534:65534 /b; id -u');
  const res = parseProbe(r);
  assert.is(res.error, undefined, JSON.stringify(res.error));
  assert.is(res.uid, 0);
  // kiln itself (not only the sandbox) is root with every capability, and chowns for real.
  assert.is(res.capEff, '000001ffffffffff');
  assert.is(res.nodeChown, 'ok');
  const n = await stat(join(dir, 'node-owned'));
  assert.equal([n.uid, n.gid], [start + 999, start + 999]);
  assert.is(res.profile, 'rootless-subuid');
  assert.is(res.executor, 'bwrap');
  assert.equal(res.uidMap.slice(0, 3), ['0', String(user.uid), '1']);
  assert.is(res.out, '0\n');
  assert.equal(res.a, [1000, 1000]);
  assert.equal(res.b, [65534, 65534]);
  // Seen from the host: ids 1… of the namespace are the subuid range.
  const a = await stat(join(dir, 'rootfs/a'));
  const b = await stat(join(dir, 'rootfs/b'));
  assert.equal([a.uid, a.gid], [start + 999, start + 999]);
  assert.equal([b.uid, b.gid], [start + 65533, start + 65533]);
  assert.not.match(r.stderr.toString(), /single-id/);
  // USER 1000 with a supplementary group, inside the namespace.
  const r2 = runAs(user, dir, 'id -u; id -G; touch /tmp/by-1000', '1000:1000:10');
  const res2 = parseProbe(r2);
  assert.is(res2.error, undefined, JSON.stringify(res2.error));
  assert.is(res2.out, '1000\n1000 10\n');
  const c = await stat(join(dir, 'rootfs/tmp/by-1000'));
  assert.equal([c.uid, c.gid], [start + 999, start + 999]);
  // The pre-2.38 path: kiln runs newuidmap/newgidmap itself before kiln is executed in the namespace.
  const r3 = runAs(user, dir, 'chown 65534:65534 /tmp/by-1000', '0:0', 'ensure-own-maps');
  const res3 = parseProbe(r3);
  assert.is(res3.error, undefined, JSON.stringify(res3.error));
  assert.equal([res3.uid, res3.capEff, res3.nodeChown], [0, '000001ffffffffff', 'ok']);
  assert.equal(res3.uidMap, ['0', String(user.uid), '1', '1', String(start), '65536']);
  assert.is((await stat(join(dir, 'rootfs/tmp/by-1000'))).uid, start + 65533);
  // The whole shared executor suite, run by that user inside kiln's build namespace.
  const suiteRunner = join(work, 'suite-ns.mjs');
  await writeFile(
    suiteRunner,
    `import { ensureBuildNamespace } from ${JSON.stringify(join(dist, 'src/sandbox/userns.js'))};\n` +
      `await ensureBuildNamespace([], { entry: ${JSON.stringify(join(dist, 'test/integration/sandbox-executors.test.js'))} });\n`,
  );
  const suite = spawnSync('setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', process.execPath, suiteRunner], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: user.home, FORCE_COLOR: '0' },
    cwd: dir,
    timeout: 180_000,
  });
  const suiteOut = suite.stdout.toString();
  assert.is(suite.status, 0, suiteOut + suite.stderr.toString());
  const total = /Total:\s+(\d+)/.exec(suiteOut)?.[1];
  assert.ok(Number(total) >= 40, suiteOut);
  assert.match(suiteOut, new RegExp(`Passed:\\s+${total}\\b`));
  assert.match(suiteOut, /sandbox executor: bwrap/);
  // kiln doctor, run by that user (outside the namespace), sees the profile.
  const d = doctorAs(user);
  assert.is(d.profile.kind, 'rootless-subuid');
  assert.is(d.isolation.executor, 'bwrap');
});

t('rootless without a subuid range: single-id namespace, a warning, and chown to another user fails', async () => {
  const user = makeUser();
  const dir = join(work, 'single');
  execFileSync('mkdir', ['-p', dir]);
  await chown(dir, user.uid, user.gid);
  const r = runAs(user, dir, 'touch /a && echo created; chown 1000:1000 /a');
  const res = parseProbe(r);
  assert.is(res.uid, 0);
  assert.is(res.profile, 'rootless-single-id');
  assert.is(res.nodeChown, 'EINVAL');
  assert.is(res.out.split('\n')[0], 'created');
  assert.ok(res.error, 'chown should fail');
  assert.match(res.error!.message, /did not complete successfully: exit code: 1/);
  assert.match(res.error!.stderrTail.join('\n'), /Invalid argument|Operation not permitted/);
  assert.match(r.stderr.toString(), /no subordinate id range for "kilnrt\d+".*single-id user namespace/);
  assert.match(r.stderr.toString(), /usermod --add-subuids/);
  const a = await stat(join(dir, 'rootfs/a'));
  assert.is(a.uid, user.uid);
  const d = doctorAs(user);
  assert.is(d.profile.kind, 'rootless-single-id');
  const sub = d.profile.features.find((f) => f.id === 'subuid')!;
  assert.is(sub.ok, false);
  assert.is(sub.fix, `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user.name}`);
});

t('no user namespaces (inside bwrap --disable-userns): auto picks chroot and says RUN is not isolated', async () => {
  const dir = join(work, 'nouserns');
  execFileSync('mkdir', ['-p', dir]);
  const r = spawnSync(
    'bwrap',
    ['--unshare-user', '--disable-userns', '--unshare-pid', '--cap-add', 'ALL', '--uid', '0', '--gid', '0', '--bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/dev/shm', '--',
      process.execPath, probe, 'no-ensure', dir, 'echo inside chroot; id -u; cat /proc/1/cmdline | tr "\\\\0" " "'],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 60_000 },
  );
  const res = parseProbe(r);
  assert.is(res.error, undefined, JSON.stringify(res.error));
  assert.is(res.profile, 'no-userns');
  assert.is(res.executor, 'chroot');
  assert.match(res.notice ?? '', /No user namespaces here: RUN steps use chroot isolation: they are NOT isolated/);
  assert.match(res.out, /^inside chroot\n0\n/);
});

t('a container without CAP_SYS_ADMIN (docker default caps, no namespaces at all): plain chroot, the rootfs put back', async () => {
  const dir = join(work, 'plain');
  execFileSync('mkdir', ['-p', dir]);
  const script = join(work, 'plain.mjs');
  await writeFile(
    script,
    `
import { selectExecutor } from ${JSON.stringify(join(dist, 'src/sandbox/select-executor.js'))};
import { makeRootfs } from ${JSON.stringify(join(dist, 'test/helpers/rootfs.js'))};
import { readdirSync, readFileSync, statSync, writeFileSync, utimesSync } from 'node:fs';
const rootfs = await makeRootfs(${JSON.stringify(join(dir, 'rootfs'))});
writeFileSync(rootfs + '/etc/hosts', 'image hosts\\n');
utimesSync(rootfs + '/etc/hosts', 1000, 1000);
const { executor, notice } = await selectExecutor('auto');
const base = { rootfs, env: ['PATH=/bin'], user: { uid: 0, gid: 0, additionalGids: [] }, network: 'host' };
let out = '';
await executor.run({ ...base, args: ['/bin/sh', '-c', 'pwd; cat /etc/hosts /run/secrets/s; echo; echo changed >> /etc/hosts'], cwd: '/work',
  mounts: [{ type: 'file', target: '/run/secrets/s', content: Buffer.from('sec'), mode: 0o400 }], onOutput: (_s, c) => (out += c) }, {});
let refused;
try { await executor.run({ ...base, args: ['/bin/true'], cwd: '/', mounts: [{ type: 'tmpfs', target: '/t' }] }, {}); } catch (e) { refused = e.code; }
console.log(JSON.stringify({ executor: executor.name, notice, out, refused, top: readdirSync(rootfs).sort(), etc: readdirSync(rootfs + '/etc').sort(),
  hosts: readFileSync(rootfs + '/etc/hosts', 'utf8'), hostsMtime: statSync(rootfs + '/etc/hosts').mtimeMs }));
`,
  );
  const caps = ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'];
  const r = spawnSync(
    'bwrap',
    ['--unshare-user', '--disable-userns', '--unshare-pid', '--cap-drop', 'ALL', ...caps.flatMap((c) => ['--cap-add', `CAP_${c}`]), '--uid', '0', '--gid', '0',
      '--bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--', process.execPath, script],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 60_000 },
  );
  const line = r.stdout.toString().trim().split('\n').pop() ?? '';
  let res: { executor: string; notice: string; out: string; refused: string; top: string[]; etc: string[]; hosts: string; hostsMtime: number };
  try {
    res = JSON.parse(line);
  } catch {
    throw new Error(`runner failed (${r.status}): ${r.stdout}${r.stderr}`);
  }
  assert.is(res.executor, 'chroot');
  assert.match(res.notice, /No mount namespace either/);
  assert.match(res.out, /^\/work\n127\.0\.0\.1\s+localhost buildkitsandbox\n[\s\S]*sec\n$/);
  assert.is(res.refused, 'HOST_NO_MOUNT_NS');
  assert.equal(res.top, ['bin', 'etc', 'root', 'tmp', 'work']);
  assert.equal(res.etc, ['group', 'hosts', 'passwd']);
  assert.is(res.hosts, 'image hosts\n');
  assert.is(res.hostsMtime, 1000_000);
});

t('kiln doctor reports the no-userns profile with the fix, and chroot isolation', () => {
  const r = spawnSync(
    'bwrap',
    ['--unshare-user', '--disable-userns', '--unshare-pid', '--cap-add', 'ALL', '--uid', '0', '--gid', '0', '--bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--',
      process.execPath, join(dist, 'src/cli/kiln.js'), 'doctor', '--json'],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 60_000 },
  );
  assert.is(r.status, 0, r.stderr.toString());
  const report = JSON.parse(r.stdout.toString()) as { profile: { kind: string; features: { id: string; ok: boolean; fix?: string }[] }; isolation: { executor?: string; notice?: string } };
  assert.is(report.profile.kind, 'no-userns');
  const userns = report.profile.features.find((f) => f.id === 'userns')!;
  assert.is(userns.ok, false);
  assert.match(userns.fix ?? '', /sysctl|seccomp|AppArmor/);
  assert.is(report.isolation.executor, 'chroot');
  assert.match(report.isolation.notice ?? '', /NOT isolated/);
});

t('kiln doctor on this host (root): bwrap, every feature present', () => {
  const r = spawnSync(process.execPath, [join(dist, 'src/cli/kiln.js'), 'doctor'], { timeout: 60_000 });
  assert.is(r.status, 0, r.stderr.toString());
  const text = r.stdout.toString();
  assert.match(text, /^Host profile: root\n/);
  assert.match(text, /RUN isolation \(auto\): bwrap/);
  assert.match(text, /ok {4}user namespaces/);
});

t.run();
