import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { applyLayer } from '../../src/layer/apply.js';
import { craftTar, type CraftEntry } from '../helpers/craft-tar.js';

const test = suite('layer: applyLayer');
let dir = '';
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-apply-'));
});
test.after.each(() => rmSync(dir, { recursive: true, force: true }));

const xattr = (p: string, name: string): string =>
  execFileSync('getfattr', ['-h', '--absolute-names', '--only-values', '-n', name, p], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();

async function apply(entries: CraftEntry[], opts: Parameters<typeof applyLayer>[2] = {}, wrap: (b: Buffer) => Buffer = (b) => b): Promise<string[]> {
  const warnings: string[] = [];
  await applyLayer(Readable.from([wrap(craftTar(entries))]), dir, { onWarning: (w) => warnings.push(w), ...opts });
  return warnings;
}

test('files, dirs, symlinks, hardlinks, fifos, device nodes, modes, owners, mtimes, xattrs', async () => {
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  await apply([
    { name: 'bin/', type: 'dir', mode: 0o751, uid: 5, gid: 6, mtime: 1000 },
    { name: 'bin/ping', data: 'ELF', mode: 0o4755, uid: 0, gid: 0, mtime: 2000, pax: { 'SCHILY.xattr.security.capability': cap, 'SCHILY.xattr.user.note': 'hi' } },
    { name: 'bin/ping6', type: 'link', linkname: 'bin/ping' },
    { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', uid: 7, gid: 7, mtime: 3000 },
    { name: 'run/fifo', type: 'fifo', mode: 0o620, uid: 1000, gid: 1000 },
    { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
  ]);
  const bin = lstatSync(join(dir, 'bin'));
  assert.is(bin.mode & 0o7777, 0o751);
  assert.is(bin.uid, 5);
  assert.is(bin.mtimeMs, 1000_000, 'directory mtime set after its children');
  const ping = lstatSync(join(dir, 'bin/ping'));
  assert.is(ping.mode & 0o7777, 0o4755, 'setuid survives chown');
  assert.is(ping.nlink, 2);
  assert.is(lstatSync(join(dir, 'bin/ping6')).ino, ping.ino);
  assert.ok(Buffer.from(execFileSync('getfattr', ['--absolute-names', '-e', 'hex', '--only-values', '-n', 'security.capability', join(dir, 'bin/ping')]).toString(), 'latin1').length > 0);
  assert.is(xattr(join(dir, 'bin/ping'), 'user.note'), 'hi');
  const sh = lstatSync(join(dir, 'bin/sh'));
  assert.ok(sh.isSymbolicLink());
  assert.is(sh.uid, 7);
  assert.is(sh.mtimeMs, 3000_000);
  const fifo = lstatSync(join(dir, 'run/fifo'));
  assert.ok(fifo.isFIFO());
  assert.is(fifo.mode & 0o777, 0o620);
  assert.is(fifo.uid, 1000);
  const dev = lstatSync(join(dir, 'dev/null'));
  assert.ok(dev.isCharacterDevice());
  assert.is(dev.rdev, (1 << 8) | 3);
});

test('gzip, multi-member gzip and zstd layers are detected from magic bytes, whatever the media type says', async () => {
  const a = craftTar([{ name: 'a', data: 'A' }]);
  await applyLayer(Readable.from([gzipSync(a.subarray(0, 300)), gzipSync(a.subarray(300))]), dir, { mediaType: 'application/vnd.oci.image.layer.v1.tar' });
  assert.is(readFileSync(join(dir, 'a'), 'utf8'), 'A');
  await applyLayer(Readable.from([await zstdCompress(craftTar([{ name: 'z', data: 'Z' }]))]), dir, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
  assert.is(readFileSync(join(dir, 'z'), 'utf8'), 'Z');
});

test('corrupt gzip fails the apply', async () => {
  const gz = gzipSync(craftTar([{ name: 'a', data: 'A'.repeat(5000) }]));
  gz[gz.length - 6]! ^= 0xff; // CRC
  let err: unknown;
  try {
    await applyLayer(Readable.from([gz]), dir);
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'a bad gzip trailer must fail');
});

test('whiteouts delete lower content; opaque dirs keep this layer\'s own children', async () => {
  await apply([{ name: 'etc/', type: 'dir' }, { name: 'etc/old', data: '1' }, { name: 'etc/keep', data: '1' }, { name: 'var/lib/x/', type: 'dir' }, { name: 'var/lib/x/y', data: 'y' }, { name: 'opt/a', data: 'a' }, { name: 'opt/sub/b', data: 'b' }]);
  await apply([
    { name: 'etc/.wh.old', data: '' },
    { name: 'var/lib/.wh.x', data: '' },
    { name: 'opt/new', data: 'n' },
    { name: 'opt/sub/c', data: 'c' },
    { name: 'opt/.wh..wh..opq', data: '' },
  ]);
  assert.not.ok(existsSync(join(dir, 'etc/old')));
  assert.ok(existsSync(join(dir, 'etc/keep')));
  assert.not.ok(existsSync(join(dir, 'var/lib/x')));
  assert.ok(existsSync(join(dir, 'var/lib')));
  assert.equal(readdirSync(join(dir, 'opt')).sort(), ['new', 'sub']);
  assert.equal(readdirSync(join(dir, 'opt/sub')), ['c']);
  assert.not.ok(existsSync(join(dir, 'etc/.wh.old')), 'whiteout files are never created');
});

test('overlay mode: whiteouts become 0/0 char devices and opaque dirs get the overlay xattr', async () => {
  await apply([{ name: 'a/.wh.gone', data: '' }, { name: 'b/.wh..wh..opq', data: '' }, { name: 'b/kept', data: 'k' }], { whiteoutMode: 'overlay' });
  const w = lstatSync(join(dir, 'a/gone'));
  assert.ok(w.isCharacterDevice());
  assert.is(w.rdev, 0);
  assert.is(xattr(join(dir, 'b'), 'trusted.overlay.opaque'), 'y');
  assert.ok(existsSync(join(dir, 'b/kept')));
  rmSync(join(dir, 'a'), { recursive: true });
  rmSync(join(dir, 'b'), { recursive: true });
  await apply([{ name: 'c/.wh..wh..opq', data: '' }], { whiteoutMode: 'overlay', overlayOpaqueXattr: 'user.overlay.opaque' });
  assert.is(xattr(join(dir, 'c'), 'user.overlay.opaque'), 'y');
});

test('single-id rootless mode records ownership in user.containers.override_stat instead of chown', async () => {
  const warnings = await apply(
    [
      { name: 'home/u/', type: 'dir', uid: 1000, gid: 1000, mode: 0o700 },
      { name: 'home/u/f', data: 'x', uid: 1000, gid: 100, mode: 0o640 },
      { name: 'root-owned', data: 'r' },
      { name: 'dev/tty', type: 'char', devmajor: 5, devminor: 0, mode: 0o666 },
    ],
    { useOverrideStat: true },
  );
  assert.equal(warnings, []);
  assert.is(lstatSync(join(dir, 'home/u/f')).uid, process.getuid!());
  assert.is(xattr(join(dir, 'home/u/f'), 'user.containers.override_stat'), '1000:100:0640');
  assert.is(xattr(join(dir, 'home/u'), 'user.containers.override_stat'), '1000:1000:0700');
  assert.throws(() => xattr(join(dir, 'root-owned'), 'user.containers.override_stat'));
  assert.ok(lstatSync(join(dir, 'dev/tty')).isFile(), 'device kept as a placeholder file');
  assert.is(xattr(join(dir, 'dev/tty'), 'user.containers.override_stat'), '0:0:0666:char-5-0');
});

test('replacing: file over dir, dir over file, symlink over file, duplicate dir merges', async () => {
  mkdirSync(join(dir, 'x/y'), { recursive: true });
  writeFileSync(join(dir, 'x/y/z'), 'z');
  writeFileSync(join(dir, 'f'), 'f');
  await apply([
    { name: 'x', data: 'now a file' },
    { name: 'f/', type: 'dir' },
    { name: 'f/inner', data: 'i' },
    { name: 'g', data: 'g' },
    { name: 'g', type: 'symlink', linkname: 'f' },
    { name: 'd/', type: 'dir', mode: 0o700 },
    { name: 'd/1', data: '1' },
    { name: 'd/', type: 'dir', mode: 0o755 },
  ]);
  assert.is(readFileSync(join(dir, 'x'), 'utf8'), 'now a file');
  assert.is(readFileSync(join(dir, 'f/inner'), 'utf8'), 'i');
  assert.ok(lstatSync(join(dir, 'g')).isSymbolicLink());
  assert.ok(existsSync(join(dir, 'd/1')));
  assert.is(lstatSync(join(dir, 'd')).mode & 0o777, 0o755);
});

test('layer-supplied overlay and override_stat xattrs are dropped with a warning', async () => {
  const warnings = await apply([{ name: 'f', data: 'x', pax: { 'SCHILY.xattr.user.containers.override_stat': '0:0:04777', 'SCHILY.xattr.trusted.overlay.redirect': '/x' } }]);
  assert.is(warnings.length, 2);
  assert.throws(() => xattr(join(dir, 'f'), 'user.containers.override_stat'));
});

test('stats count entries and bytes', async () => {
  const s = await applyLayer(Readable.from([craftTar([{ name: 'a', data: '12345' }, { name: 'b/', type: 'dir' }])]), dir);
  assert.equal(s, { entries: 2, bytes: 5 });
});

test.run();
