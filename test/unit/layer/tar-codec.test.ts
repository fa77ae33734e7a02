import { Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compareLayerPaths } from '../../../src/layer/diff.js';
import { parseCompression } from '../../../src/layer/compress.js';
import { formatOverrideStat, parseOverrideStat } from '../../../src/layer/override-stat.js';
import { decodePax, encodeHeader, END_OF_ARCHIVE } from '../../../src/layer/tar-header.js';
import { readTar, type TarEntry } from '../../../src/layer/tar-reader.js';
import { craftTar } from '../../helpers/craft-tar.js';

const test = suite('layer: tar codec');

async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.match(String((err as Error).message), re);
    return;
  }
  assert.unreachable('expected a rejection');
}

async function readAll(buf: Buffer, chunk = 7): Promise<Array<TarEntry['header'] & { data: string }>> {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  const out = [];
  for await (const { header, body } of readTar(Readable.from(parts))) {
    const d: Buffer[] = [];
    for await (const c of body) d.push(c);
    out.push({ ...header, data: Buffer.concat(d).toString() });
  }
  return out;
}

test('reads ustar entries split across odd chunk sizes', async () => {
  const tar = craftTar([
    { name: 'dir/', type: 'dir', mode: 0o750, uid: 7, gid: 8 },
    { name: 'dir/file', data: 'hello', mode: 0o4755 },
    { name: 'dir/link', type: 'symlink', linkname: '../x' },
  ]);
  const e = await readAll(tar, 13);
  assert.equal(e.map((x) => [x.name, x.type, x.mode, x.uid, x.data, x.linkname]), [
    ['dir/', 'dir', 0o750, 7, '', ''],
    ['dir/file', 'file', 0o4755, 0, 'hello', ''],
    ['dir/link', 'symlink', 0o644, 0, '', '../x'],
  ]);
});

test('an unread body is skipped', async () => {
  const tar = craftTar([{ name: 'a', data: 'x'.repeat(2000) }, { name: 'b', data: 'y' }]);
  const names: string[] = [];
  for await (const { header } of readTar(Readable.from([tar]))) names.push(header.name);
  assert.equal(names, ['a', 'b']);
});

test('PAX records override ustar fields and keep binary xattr values', async () => {
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  const tar = craftTar([{ name: 'short', data: 'abc', pax: { path: 'p'.repeat(300), uid: '4000000000', 'SCHILY.xattr.security.capability': cap, mtime: '1700000000.5' } }]);
  const [e] = await readAll(tar);
  assert.is(e!.name, 'p'.repeat(300));
  assert.is(e!.uid, 4000000000);
  assert.is(e!.mtime, 1700000000.5);
  assert.ok(e!.xattrs.get('security.capability')!.equals(cap));
});

test('GNU long names and global PAX headers apply', async () => {
  const tar = craftTar([
    { name: 'g', flag: 'g', data: '20 uname=globaluser\n' },
    { name: 'x', data: 'q', longName: 'l'.repeat(200) },
    { name: 'y', type: 'symlink', longLink: 't'.repeat(150) },
  ]);
  const e = await readAll(tar);
  assert.equal(e.map((x) => [x.name.length, x.linkname.length, x.uname]), [
    [200, 0, 'globaluser'],
    [1, 150, 'globaluser'],
  ]);
});

test('encodeHeader round-trips through the reader, PAX only when needed', async () => {
  const small = encodeHeader({ name: 'a/b', type: 'file', mode: 0o644, uid: 1, gid: 2, size: 0, mtime: 5 });
  assert.is(small.length, 512);
  const xa: Array<[string, Buffer]> = [['user.bin', Buffer.from([0, 255, 10, 61])]];
  const big = encodeHeader({ name: `${'d'.repeat(120)}/é`, type: 'symlink', mode: 0o777, uid: 3_000_000, gid: 0, size: 0, mtime: 9, linkname: 'z'.repeat(140), xattrs: xa });
  const [e] = await readAll(Buffer.concat([big, END_OF_ARCHIVE]));
  assert.is(e!.name, `${'d'.repeat(120)}/é`);
  assert.is(e!.linkname, 'z'.repeat(140));
  assert.is(e!.uid, 3_000_000);
  assert.ok(e!.xattrs.get('user.bin')!.equals(xa[0]![1]));
});

test('GNU tar style base-256 numbers decode, negative ones are refused', async () => {
  const size = Buffer.alloc(12);
  size[0] = 0x80;
  size.writeUInt32BE(3, 8);
  const [e] = await readAll(craftTar([{ name: 'f', data: 'abc', sizeField: size }]));
  assert.is(e!.data, 'abc');
  const neg = Buffer.alloc(12, 0xff);
  await rejects(() => readAll(craftTar([{ name: 'f', sizeField: neg }])), /negative size/);
});

test('malformed PAX records are refused', () => {
  assert.throws(() => decodePax(Buffer.from('99 path=x\n')), /overruns/);
  assert.throws(() => decodePax(Buffer.from('abc path=x\n')), /malformed/);
  assert.throws(() => decodePax(Buffer.from('8 pathx\n')), /without "="/);
});

test('truncated archives and bad checksums are refused', async () => {
  await rejects(() => readAll(craftTar([{ name: 'f', data: 'abc', size: 5000 }], { end: false })), /truncated/);
  await rejects(() => readAll(craftTar([{ name: 'f', badChecksum: true }])), /checksum/);
});

test('layer path order: depth first, bytes, opaque marker first', () => {
  const paths = ['a-b', 'a/z', 'a', 'a/.wh..wh..opq', 'a/-x', 'B', 'a/b/c', 'é'];
  assert.equal([...paths].sort(compareLayerPaths), ['B', 'a', 'a/.wh..wh..opq', 'a/-x', 'a/b/c', 'a/z', 'a-b', 'é']);
});

test('parseCompression accepts buildx forms and refuses the rest', () => {
  assert.equal(parseCompression('gzip'), { compression: 'gzip' });
  assert.equal(parseCompression('zstd,level=19'), { compression: 'zstd', level: 19 });
  assert.equal(parseCompression('uncompressed'), { compression: 'none' });
  assert.throws(() => parseCompression('estargz'), /expected gzip, zstd or uncompressed/);
  assert.throws(() => parseCompression('gzip,level=10'), /from 0 to 9/);
  assert.throws(() => parseCompression('zstd,force=true'), /unknown option "force"/);
  assert.throws(() => parseCompression('uncompressed,level=1'), /no level/);
});

test('override_stat values format and parse like containers/storage', () => {
  assert.is(formatOverrideStat({ uid: 1000, gid: 100, mode: 0o4755 }).toString(), '1000:100:04755');
  assert.is(formatOverrideStat({ uid: 0, gid: 0, mode: 0o660, type: 'char', devmajor: 1, devminor: 3 }).toString(), '0:0:0660:char-1-3');
  assert.equal(parseOverrideStat(Buffer.from('5:6:0640:block-8-1')), { uid: 5, gid: 6, mode: 0o640, type: 'block', devmajor: 8, devminor: 1 });
  assert.equal(parseOverrideStat(Buffer.from('5:6:755:pipe')), { uid: 5, gid: 6, mode: 0o755, type: 'fifo' });
  assert.is(parseOverrideStat(Buffer.from('garbage')), undefined);
});

test.run();
