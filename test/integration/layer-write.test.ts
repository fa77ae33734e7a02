import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, linkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openContentStore } from '../../src/content/index.js';
import { changesFromTree } from '../../src/layer/walk-tree.js';
import { writeLayer } from '../../src/layer/write-layer.js';
import type { Change } from '../../src/layer/types.js';

const test = suite('layer: writeLayer');
let base = '';
let root = '';
let store: ReturnType<typeof openContentStore>;

test.before.each(() => {
  base = mkdtempSync(join(tmpdir(), 'kiln-write-'));
  root = join(base, 'root');
  mkdirSync(root);
  store = openContentStore(join(base, 'store'));
});
test.after.each(() => rmSync(base, { recursive: true, force: true }));

function sample(): void {
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'usr/bin/tool'), Buffer.alloc(3 * 1024 * 1024 + 17, 'tool-bytes-'));
  linkSync(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-alias'));
  symlinkSync('../usr/bin/tool', join(root, 'etc/link'));
  writeFileSync(join(root, 'etc/conf'), 'a=1\n');
}

const tarList = (blob: string, z = 'z'): string[] =>
  execFileSync('tar', [`-t${z}vvf`, blob, '--numeric-owner', '--xattrs', '--xattrs-include=*'], { encoding: 'utf8' }).trim().split('\n');

test('the same tree gives the same digest and diffId, whatever the thread count; gzip -t, pigz -t and zstd -t accept the output', async () => {
  sample();
  const changes = await changesFromTree(root);
  const a = await writeLayer(store, { root, changes, compression: 'gzip', threads: 1 });
  const b = await writeLayer(store, { root, changes, compression: 'gzip', threads: 3 });
  assert.is(a.descriptor.digest, b.descriptor.digest);
  assert.is(a.diffId, b.diffId);
  assert.is(a.descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const blob = store.blobPath(a.descriptor.digest);
  execFileSync('gzip', ['-t', blob]);
  execFileSync('pigz', ['-t', blob]);
  const raw = execFileSync('gzip', ['-dc', blob], { maxBuffer: 64 << 20 });
  assert.is(`sha256:${createHash('sha256').update(raw).digest('hex')}`, a.diffId);
  assert.is(raw.length, a.uncompressedSize);
  assert.ok(a.descriptor.size < raw.length / 10, 'compressible content compresses');
  const z1 = await writeLayer(store, { root, changes, compression: 'zstd', threads: 1 });
  const z2 = await writeLayer(store, { root, changes, compression: 'zstd', threads: 2, level: 3 });
  assert.is(z1.descriptor.digest, z2.descriptor.digest);
  assert.is(z1.diffId, a.diffId);
  assert.is(z1.descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  execFileSync('zstd', ['-q', '-t', store.blobPath(z1.descriptor.digest)]);
  const n = await writeLayer(store, { root, changes, compression: 'none' });
  assert.is(n.descriptor.digest, a.diffId);
  const d = await writeLayer(store, { root, changes, compression: 'gzip', oci: false, level: 1 });
  assert.is(d.descriptor.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  assert.is.not(d.descriptor.digest, a.descriptor.digest, 'level changes the bytes');
});

test('entries are sorted with parents first and hardlinks kept; GNU tar lists them', async () => {
  sample();
  const r = await writeLayer(store, { root, changes: [{ kind: 'add', path: 'usr/bin/tool-alias' }, { kind: 'modify', path: 'usr/bin/tool' }, { kind: 'add', path: 'etc/link' }], compression: 'gzip' });
  const lines = tarList(store.blobPath(r.descriptor.digest));
  assert.equal(lines.map((l) => l.split(/\s+/).slice(5).join(' ')), ['etc/', 'etc/link -> ../usr/bin/tool', 'usr/', 'usr/bin/', 'usr/bin/tool', 'usr/bin/tool-alias link to usr/bin/tool']);
});

test('deletes become whiteouts, opaque directories get the marker first', async () => {
  mkdirSync(join(root, 'var/cache'), { recursive: true });
  writeFileSync(join(root, 'var/cache/-early'), '');
  const changes: Change[] = [
    { kind: 'delete', path: 'etc/passwd-' },
    { kind: 'add', path: 'var/cache', opaque: true },
    { kind: 'add', path: 'var/cache/-early' },
    { kind: 'delete', path: 'gone' },
  ];
  mkdirSync(join(root, 'etc'));
  const r = await writeLayer(store, { root, changes, compression: 'none', sourceDateEpoch: 10 });
  const names = tarList(store.blobPath(r.descriptor.digest), '').map((l) => l.split(/\s+/).slice(5).join(' '));
  assert.equal(names, ['.wh.gone', 'etc/', 'etc/.wh.passwd-', 'var/', 'var/cache/', 'var/cache/.wh..wh..opq', 'var/cache/-early']);
});

test('SOURCE_DATE_EPOCH clamps mtimes: touched trees give bit-identical layers', async () => {
  sample();
  const changes = await changesFromTree(root);
  const a = await writeLayer(store, { root, changes, compression: 'gzip', sourceDateEpoch: 1_700_000_000 });
  for (const p of ['etc/conf', 'usr/bin/tool', 'usr', 'etc']) utimesSync(join(root, p), new Date(), new Date());
  const b = await writeLayer(store, { root, changes, compression: 'gzip', sourceDateEpoch: 1_700_000_000 });
  const c = await writeLayer(store, { root, changes, compression: 'gzip' });
  assert.is(a.descriptor.digest, b.descriptor.digest);
  assert.is.not(c.diffId, a.diffId);
  assert.ok(tarList(store.blobPath(a.descriptor.digest)).every((l) => l.includes('2023-11-14')));
});

test('override_stat ownership is written back into headers and not kept as an xattr', async () => {
  writeFileSync(join(root, 'owned'), 'x');
  writeFileSync(join(root, 'plain'), 'y');
  writeFileSync(join(root, 'tty'), '');
  execFileSync('setfattr', ['-n', 'user.containers.override_stat', '-v', '1000:100:04750', join(root, 'owned')]);
  execFileSync('setfattr', ['-n', 'user.containers.override_stat', '-v', '0:5:0620:char-4-1', join(root, 'tty')]);
  execFileSync('setfattr', ['-n', 'user.other', '-v', 'kept', join(root, 'plain')]);
  execFileSync('chown', ['4321:4321', join(root, 'plain')]);
  const r = await writeLayer(store, { root, changes: await changesFromTree(root), compression: 'none', useOverrideStat: true, sourceDateEpoch: 0 });
  const lines = tarList(store.blobPath(r.descriptor.digest), '');
  assert.match(lines.join('\n'), /-rwsr-x--- +1000\/100 +1 .* owned/);
  assert.match(lines.join('\n'), /-rw-r--r--\* +0\/0 .* plain\n +x: +4 user.other/);
  assert.match(lines.join('\n'), /crw--w---- +0\/5 +4,1 .* tty/);
  assert.not.match(lines.join('\n'), /override_stat/);
});

test('sockets are skipped with a warning; long and non-ASCII names survive', async () => {
  const long = `${'d'.repeat(150)}/${'é'.repeat(60)}/${'f'.repeat(200)}`;
  mkdirSync(join(root, long, '..'), { recursive: true });
  writeFileSync(join(root, long), 'deep');
  const sock = join(root, 's.sock');
  const server = createServer();
  await new Promise<void>((r) => server.listen(sock, r));
  const warnings: string[] = [];
  try {
    const r = await writeLayer(store, { root, changes: await changesFromTree(root), compression: 'gzip', onWarning: (w) => warnings.push(w) });
    const names = tarList(store.blobPath(r.descriptor.digest)).map((l) => l.split(/\s+/).slice(5).join(' '));
    assert.ok(names.includes(long), 'PAX path read back by GNU tar');
    assert.not.ok(names.some((n) => n.includes('s.sock')));
  } finally {
    await new Promise((r) => server.close(r));
  }
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /socket "s.sock"/);
});

test('a change below a symlink is refused, never read through it', async () => {
  symlinkSync('/etc', join(root, 'etc'));
  try {
    await writeLayer(store, { root, changes: [{ kind: 'add', path: 'etc/shadow' }], compression: 'none' });
    assert.unreachable();
  } catch (err) {
    assert.match(String(err), /change "etc\/shadow" lies below "etc", which is not a directory/);
  }
});

test('a changed path that does not exist fails clearly', async () => {
  try {
    await writeLayer(store, { root, changes: [{ kind: 'add', path: 'nope' }], compression: 'gzip' });
    assert.unreachable();
  } catch (err) {
    assert.match(String(err), /Cannot write layer: change "nope" cannot be read/);
  }
  void readFileSync;
});

test.run();
