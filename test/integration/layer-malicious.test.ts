import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KilnError } from '../../src/errors.js';
import { applyLayer } from '../../src/layer/apply.js';
import type { ApplyOptions } from '../../src/layer/types.js';
import { craftTar, type CraftEntry } from '../helpers/craft-tar.js';
import { makeSandbox, type Sandbox } from '../helpers/sentinel.js';

/**
 * The malicious-layer corpus. Each case crafts the archive an advisory
 * describes (or a close relative) and asserts that nothing outside the target
 * changed: the sentinel tree, its xattrs and the host paths snapshot equal, and
 * no file named after the attack appears anywhere outside.
 */
const test = suite('layer: malicious layers');

type Expect = 'reject' | 'contain' | 'either';
interface Case {
  build: (s: Sandbox) => CraftEntry[] | Buffer;
  expect: Expect;
  options?: ApplyOptions;
  gzip?: boolean;
  /** Extra assertions on the extracted target. */
  check?: (s: Sandbox) => void;
}

let count = 0;

function attack(title: string, c: Case): void {
  count++;
  test(title, async () => {
    const s = makeSandbox();
    try {
      const before = s.snapshot();
      const built = c.build(s);
      let tar = Buffer.isBuffer(built) ? built : craftTar(built);
      if (c.gzip) tar = gzipSync(tar);
      let error: unknown;
      const warnings: string[] = [];
      try {
        await applyLayer(Readable.from([tar]), s.target, { onWarning: (w) => warnings.push(w), ...c.options });
      } catch (err) {
        error = err;
      }
      assert.equal(s.escapes(), [], 'a crafted file appeared outside the target');
      assert.fixture(s.snapshot(), before);
      if (c.expect === 'reject') {
        assert.ok(error instanceof KilnError, `expected a refusal, got ${String(error)}`);
        assert.ok(/^LAYER_(UNSAFE_ENTRY|INVALID_TAR)$/.test((error as KilnError).code), (error as KilnError).code);
      } else if (c.expect === 'contain') {
        if (error) throw error;
      } else if (error && !(error instanceof KilnError)) throw error;
      c.check?.(s);
    } finally {
      s.cleanup();
    }
  });
}

const file = (name: string, data = 'pwned\n', extra: Partial<CraftEntry> = {}): CraftEntry => ({ name, type: 'file', data, ...extra });
const dir = (name: string, extra: Partial<CraftEntry> = {}): CraftEntry => ({ name, type: 'dir', ...extra });
const sym = (name: string, linkname: string, extra: Partial<CraftEntry> = {}): CraftEntry => ({ name, type: 'symlink', linkname, ...extra });
const hard = (name: string, linkname: string): CraftEntry => ({ name, type: 'link', linkname });

// ---- node-tar 2021 advisories

attack('CVE-2021-32803 node-tar: directory cache poisoned by a symlink of the same name, then a file under it', {
  build: (s) => [dir('a'), sym('a', s.outside), file(`a/${s.pwned}`)],
  expect: 'contain',
  check: (s) => assert.ok(existsSync(join(s.target, s.outside.slice(1), s.pwned)), 'file lands under the symlink resolved inside the root'),
});

attack('CVE-2021-32804 node-tar: absolute path with repeated leading slashes', {
  build: (s) => [file(`////${s.outside.slice(1)}/${s.pwned}`)],
  expect: 'contain',
  check: (s) => assert.ok(existsSync(join(s.target, s.outside, s.pwned))),
});

attack('CVE-2021-37701 node-tar: symlink named with a trailing slash replaces a cached directory', {
  build: (s) => [dir('x/'), sym('x/', s.outside), file(`x/${s.pwned}`)],
  expect: 'contain',
});

attack('CVE-2021-37712 node-tar: unicode-normalisation twins (NFC dir, NFD symlink) then a file through them', {
  build: (s) => [dir('\u00e9'), sym('e\u0301', s.outside), file(`e\u0301/${s.pwned}`), file(`\u00e9/${s.pwned}`)],
  expect: 'contain',
});

attack('CVE-2021-37713 node-tar: drive-relative "C:../" path', {
  build: (s) => [file(`C:../outside/${s.pwned}`)],
  expect: 'contain',
  check: (s) => assert.ok(existsSync(join(s.target, 'C:..', 'outside', s.pwned))),
});

attack('CVE-2018-20834 node-tar: hardlink to an outside file, then a file entry of the same name written through it', {
  build: (s) => [hard('h', join(s.outside, 'secret')), file('h', 'overwritten\n')],
  expect: 'either',
});

// ---- tar-fs 2024-2025

attack('CVE-2024-12905 tar-fs: symlink to outside, hardlink through it, then a write to the hardlink', {
  build: (s) => [sym('l', s.outside), hard('h', 'l/secret'), file('h', 'overwritten\n')],
  expect: 'either',
});

attack('CVE-2025-48387 tar-fs: symlink to ".." then a file under it', {
  build: (s) => [sym('up', '..'), file(`up/${s.pwned}`), sym('up2', '../..'), file(`up2/${s.pwned}-2`)],
  expect: 'contain',
  check: (s) => assert.ok(existsSync(join(s.target, s.pwned)), '".." from the root stays at the root'),
});

attack('CVE-2025-59343 tar-fs: symlink whose target climbs through a sibling directory', {
  build: (s) => [dir('b'), sym('a', 'b/../../outside'), file(`a/${s.pwned}`)],
  expect: 'contain',
  check: (s) => assert.ok(existsSync(join(s.target, 'outside', s.pwned))),
});

// ---- umoci, containerd, moby

attack('CVE-2021-29136 umoci: "." entry is a symlink to the outside, then metadata and files for "."', {
  build: (s) => [sym('.', s.outside), dir('.', { mode: 0o777, uid: 4242 }), dir('./', { mode: 0o777 }), file(s.pwned)],
  expect: 'either',
});

attack('CVE-2021-29136 umoci variant: "./" symlink to "/" then chmod of the root', {
  build: () => [sym('./', '/'), dir('./', { mode: 0o777, uid: 1 })],
  expect: 'either',
});

attack('CVE-2021-32760 containerd: chmod of an outside file through a symlink entry of the same name', {
  build: (s) => [sym('foo', join(s.outside, 'secret')), { name: 'foo', type: 'file', data: '', mode: 0o777 }],
  expect: 'contain',
  check: (s) => assert.ok(lstatSync(join(s.target, 'foo')).isFile()),
});

attack('CVE-2021-32760 containerd: symlink carrying mode, owner and mtime is never followed', {
  build: (s) => [sym('foo', join(s.outside, 'secret'), { mode: 0o4777, uid: 4242, gid: 4242, mtime: 1 })],
  expect: 'contain',
  check: (s) => assert.equal(readlinkSync(join(s.target, 'foo')), join(s.outside, 'secret')),
});

attack('CVE-2014-9356 moby: absolute symlink to a host directory, then a file under it', {
  build: (s) => [sym('etc', s.outside), file(`etc/${s.pwned}`)],
  expect: 'contain',
});

attack('CVE-2014-6407 moby: hardlink to an absolute host path', {
  build: (s) => [hard(s.pwned, join(s.outside, 'secret'))],
  expect: 'either',
});

attack('CVE-2018-15664 docker cp: symlinked parent swapped in after a directory of the same name (static form of the race)', {
  build: (s) => [dir('usr'), file('usr/ok'), sym('usr', '/'), file(`usr/${s.outside.slice(1)}/${s.pwned}`)],
  expect: 'contain',
});

attack('hardlink to /etc/shadow', {
  build: () => [hard('shadow', '/etc/shadow')],
  expect: 'reject',
});

attack('hardlink to the outside via "../"', {
  build: () => [hard('h', '../outside/secret')],
  expect: 'reject',
});

attack('hardlink through a symlinked directory pointing outside', {
  build: (s) => [sym('d', s.outside), hard('h', 'd/secret'), file('h', 'overwritten\n')],
  expect: 'either',
});

attack('hardlink to a symlink pointing outside, then chmod-bearing file of the same name', {
  build: (s) => [sym('s', join(s.outside, 'secret')), hard('h', 's'), { name: 'h', type: 'file', data: 'x', mode: 0o777 }],
  expect: 'contain',
});

// ---- zip-slip style names

attack('zip-slip: "../" file name', {
  build: (s) => [file(`../outside/${s.pwned}`)],
  expect: 'reject',
});

attack('zip-slip: ".." buried in the middle of a path', {
  build: (s) => [dir('a'), dir('a/b'), file(`a/b/../../../outside/${s.pwned}`)],
  expect: 'reject',
});

attack('zip-slip: absolute path to the sentinel tree', {
  build: (s) => [file(join(s.outside, s.pwned))],
  expect: 'contain',
});

attack('zip-slip through a GNU long name (L header)', {
  build: (s) => [{ name: 'short', type: 'file', data: 'x', longName: `${'a/'.repeat(60)}${'../'.repeat(61)}outside/${s.pwned}` }],
  expect: 'reject',
});

attack('zip-slip through a PAX path record overriding a harmless ustar name', {
  build: (s) => [{ name: 'harmless', type: 'file', data: 'x', pax: { path: `../outside/${s.pwned}` } }],
  expect: 'reject',
});

attack('hardlink escape through a PAX linkpath record', {
  build: () => [{ name: 'h', type: 'link', linkname: 'harmless', pax: { linkpath: '../../../../../../etc/shadow' } }],
  expect: 'reject',
});

// ---- symlink games

attack('relative symlink chain escaping in two hops', {
  build: (s) => [sym('b', '../outside'), sym('a', 'b'), file(`a/${s.pwned}`)],
  expect: 'contain',
});

attack('symlink loop then a file under it', {
  build: (s) => [sym('loop', 'loop'), file(`loop/${s.pwned}`)],
  expect: 'reject',
});

attack('duplicate entries: file, symlink to outside, then the file again', {
  build: (s) => [file('x', 'one'), sym('x', join(s.outside, 'secret')), file('x', 'overwritten\n')],
  expect: 'contain',
  check: (s) => assert.equal(readFileSync(join(s.target, 'x'), 'utf8'), 'overwritten\n'),
});

attack('directory entry over a symlink to an outside directory (chmod/chown/utime must not follow)', {
  build: (s) => [sym('d', join(s.outside, 'dir')), dir('d', { mode: 0o777, uid: 4242, gid: 4242, mtime: 1 })],
  expect: 'contain',
  check: (s) => assert.ok(lstatSync(join(s.target, 'd')).isDirectory()),
});

attack('deferred xattr: file gets an xattr, then its parent is replaced by a symlink to the outside', {
  build: (s) => [dir('a'), file('a/secret', 'x', { pax: { 'SCHILY.xattr.user.pwned': 'yes' } }), sym('a', s.outside)],
  expect: 'contain',
});

attack('deferred directory mtime: directory replaced by a symlink to the outside after its entry', {
  build: (s) => [dir('a', { mtime: 1 }), sym('a', join(s.outside, 'dir'))],
  expect: 'contain',
});

attack('xattr on a symlink pointing outside is never set through it', {
  build: (s) => [sym('s', join(s.outside, 'secret'), { pax: { 'SCHILY.xattr.user.pwned': 'yes', 'SCHILY.xattr.trusted.pwned': 'yes' } })],
  expect: 'contain',
});

// ---- whiteouts

attack('whiteout of ".." (".wh..." entry)', {
  build: () => [dir('a'), file('a/.wh...')],
  expect: 'reject',
});

attack('whiteout through a symlinked parent pointing outside', {
  build: (s) => [sym('l', s.outside), file('l/.wh.secret'), file('l/dir/.wh.inner')],
  expect: 'contain',
});

attack('opaque whiteout through a symlinked parent pointing outside', {
  build: (s) => [sym('l', s.outside), file('l/.wh..wh..opq')],
  expect: 'contain',
});

attack('opaque whiteout of the root next to a symlink to the outside', {
  build: (s) => [sym('out', s.outside), file('.wh..wh..opq')],
  expect: 'contain',
});

attack('overlay mode: whiteout device through a symlinked parent', {
  build: (s) => [sym('l', s.outside), file('l/.wh.secret')],
  options: { whiteoutMode: 'overlay' },
  expect: 'contain',
});

attack('overlay mode: layer-supplied trusted.overlay.redirect/opaque xattrs are dropped', {
  build: () => [dir('a', { pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/../../outside', 'SCHILY.xattr.trusted.overlay.opaque': 'y' } })],
  options: { whiteoutMode: 'overlay' },
  expect: 'contain',
  check: (s) => assert.not.match(execFileSync('getfattr', ['-d', '-m', '-', join(s.target, 'a')]).toString(), 'overlay'),
});

// ---- special files

attack('device node created through a symlinked parent', {
  build: (s) => [sym('dev', s.outside), { name: `dev/${s.pwned}`, type: 'char', devmajor: 1, devminor: 3, mode: 0o666 }],
  expect: 'contain',
});

attack('fifo created through a symlinked parent', {
  build: (s) => [sym('p', s.outside), { name: `p/${s.pwned}`, type: 'fifo' }],
  expect: 'contain',
});

attack('"." entry that is a regular file', {
  build: () => [{ name: './', type: 'file', data: 'x' }],
  expect: 'reject',
});

attack('hardlink to the root itself', {
  build: () => [hard('h', '.')],
  expect: 'reject',
});

// ---- malformed and oversized headers

attack('oversized PAX header (1 GiB declared) is refused without buffering', {
  build: (s) => {
    const e = craftTar([file(s.pwned)], { end: false });
    const head = craftTar([{ name: 'PaxHeader', flag: 'x', size: 1024 * 1024 * 1024 }], { end: false }).subarray(0, 512);
    return Buffer.concat([head, Buffer.alloc(4096), e]);
  },
  expect: 'reject',
});

attack('oversized GNU long name (16 MiB declared)', {
  build: () => craftTar([{ name: '././@LongLink', flag: 'L', size: 16 * 1024 * 1024 }], { end: false }).subarray(0, 512),
  expect: 'reject',
});

attack('truncated archive: file body shorter than its size', {
  build: (s) => craftTar([{ name: s.pwned, type: 'file', data: 'short', size: 100000 }], { end: false }),
  expect: 'reject',
  gzip: true,
});

attack('bad header checksum', {
  build: (s) => [{ name: s.pwned, type: 'file', data: 'x', badChecksum: true }],
  expect: 'reject',
});

attack('negative base-256 size field', {
  build: (s) => [{ name: s.pwned, type: 'file', sizeField: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]) }],
  expect: 'reject',
});

attack('sparse file (GNU.sparse PAX records) is refused', {
  build: (s) => [{ name: s.pwned, type: 'file', data: 'x', pax: { 'GNU.sparse.map': '0,1', 'GNU.sparse.realsize': '999999999999' } }],
  expect: 'reject',
});

attack('unknown type flag is refused', {
  build: (s) => [{ name: s.pwned, flag: 'Z', data: 'x' }],
  expect: 'reject',
});

attack('NUL byte smuggled into a PAX path', {
  build: (s) => [{ name: 'x', type: 'file', data: 'x', pax: { path: `ok\0/../../outside/${s.pwned}` } }],
  expect: 'reject',
});

test('the corpus holds at least 30 attacks', () => {
  assert.ok(count >= 30, `only ${count} attacks`);
});

test.run();
