import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PreparedRun } from '../../../src/sandbox/prepare-run.js';
import { buildSpec } from '../../../src/sandbox/runc.js';
import type { RunRequest } from '../../../src/sandbox/types.js';

const req: RunRequest = {
  rootfs: '/r',
  args: ['/bin/sh', '-c', 'make'],
  env: ['A=1'],
  cwd: '/src',
  user: { uid: 1000, gid: 100, additionalGids: [10] },
  network: 'none',
  mounts: [],
};
const prep: PreparedRun = {
  rootfs: '/r',
  mounts: [
    { kind: 'bind', source: '/tmp/f0', dest: '/etc/hosts', readonly: true },
    { kind: 'tmpfs', dest: '/scratch', sizeBytes: 1024 },
  ],
  cwd: '/src',
  env: { A: '1', HOME: '/home/app' },
  hostname: 'buildkitsandbox',
  tempDir: '/tmp/x',
  cleanup: async () => undefined,
};

test('the OCI spec carries the process, user, env, mounts and namespaces of the run', () => {
  const spec = buildSpec(req, prep) as {
    ociVersion: string;
    process: { args: string[]; env: string[]; cwd: string; user: unknown; capabilities: { bounding: string[] } };
    root: { path: string };
    hostname: string;
    mounts: { destination: string; type: string; source: string; options: string[] }[];
    linux: { namespaces: { type: string }[]; maskedPaths: string[] };
  };
  assert.is(spec.ociVersion, '1.0.2');
  assert.equal(spec.process.args, ['/bin/sh', '-c', 'make']);
  assert.equal(spec.process.env, ['A=1', 'HOME=/home/app']);
  assert.is(spec.process.cwd, '/src');
  assert.equal(spec.process.user, { uid: 1000, gid: 100, additionalGids: [10] });
  assert.is(spec.root.path, '/r');
  assert.equal(spec.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.ok(spec.linux.maskedPaths.includes('/proc/kcore'));
  assert.ok(spec.process.capabilities.bounding.includes('CAP_CHOWN'));
  assert.not.ok(spec.process.capabilities.bounding.includes('CAP_SYS_ADMIN'));
  const hosts = spec.mounts.find((m) => m.destination === '/etc/hosts')!;
  assert.equal(hosts, { destination: '/etc/hosts', type: 'bind', source: '/tmp/f0', options: ['rbind', 'ro'] });
  const tmp = spec.mounts.find((m) => m.destination === '/scratch')!;
  assert.ok(tmp.options.includes('size=1024'));
  assert.equal(spec.mounts.slice(0, 2).map((m) => m.destination), ['/proc', '/dev']);
});

test('network host keeps the host network namespace', () => {
  const spec = buildSpec({ ...req, network: 'host' }, prep) as { linux: { namespaces: { type: string }[] } };
  assert.not.ok(spec.linux.namespaces.some((n) => n.type === 'network'));
});

test('with the helper, the process runs under setpriv --pdeathsig KILL from /dev/.kiln', () => {
  const helper = { files: [{ source: '/usr/bin/setpriv', name: 'setpriv' }, { source: '/lib64/ld-linux-x86-64.so.2', name: 'ld-linux-x86-64.so.2' }], loader: 'ld-linux-x86-64.so.2' };
  const spec = buildSpec(req, prep, helper) as { process: { args: string[] }; mounts: { destination: string }[] };
  assert.equal(spec.process.args, ['/dev/.kiln/ld-linux-x86-64.so.2', '--library-path', '/dev/.kiln', '/dev/.kiln/setpriv', '--pdeathsig', 'KILL', '--', '/bin/sh', '-c', 'make']);
  assert.ok(spec.mounts.some((m) => m.destination === '/dev/.kiln/setpriv'));
});

test.run();
