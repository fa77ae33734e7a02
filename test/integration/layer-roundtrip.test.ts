import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync, lutimesSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openContentStore } from '../../src/content/index.js';
import { applyLayer } from '../../src/layer/apply.js';
import { changesFromTree } from '../../src/layer/walk-tree.js';
import { writeLayer } from '../../src/layer/write-layer.js';

/**
 * Apply ∘ diff is the identity on a busybox-static based rootfs with the odd
 * entries real images carry (hardlinks, absolute and relative symlinks, fifo,
 * device nodes, setuid/setgid/sticky modes, owners, xattrs incl.
 * security.capability, long and non-ASCII names). Checked three ways: our
 * own metadata walk, GNU tar's listing of our blob against GNU tar's own
 * archive of the tree, and umoci's unpack of the layer.
 */
const test = suite('layer: round trip');
let base = '';
let src = '';
let server: Server | undefined;

const LONG = `${'l'.repeat(120)}/${'ü'.repeat(70)}/${'n'.repeat(180)}`;

test.before(async () => {
  base = mkdtempSync(join(tmpdir(), 'kiln-roundtrip-'));
  src = join(base, 'src');
  const p = (x: string): string => join(src, x);
  for (const d of ['bin', 'usr/bin', 'etc', 'tmp', 'var/mail', 'dev', 'run', 'home/user', 'empty', LONG + '/..']) mkdirSync(p(d), { recursive: true });
  copyFileSync('/bin/busybox', p('bin/busybox'));
  chmodSync(p('bin/busybox'), 0o755);
  for (const a of ['sh', 'ls', 'cat']) linkSync(p('bin/busybox'), p(`bin/${a}`));
  copyFileSync('/bin/busybox', p('bin/ping'));
  chmodSync(p('bin/ping'), 0o4755);
  execFileSync('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', p('bin/ping')]);
  symlinkSync('/bin/busybox', p('usr/bin/env'));
  symlinkSync('../bin', p('usr/sbin'));
  writeFileSync(p('etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n');
  execFileSync('setfattr', ['-n', 'user.mime_type', '-v', 'text/plain', p('etc/passwd')]);
  execFileSync('setfattr', ['-n', 'trusted.kiln', '-v', '0x00ff00', p('etc/passwd')]);
  writeFileSync(p('etc/shadow'), 'root:*:19000::::::\n');
  chownSync(p('etc/shadow'), 0, 42);
  chmodSync(p('etc/shadow'), 0o640);
  chmodSync(p('tmp'), 0o1777);
  chownSync(p('var/mail'), 0, 8);
  chmodSync(p('var/mail'), 0o2775);
  execFileSync('mknod', ['-m', '666', p('dev/null'), 'c', '1', '3']);
  execFileSync('mknod', ['-m', '660', p('dev/loop0'), 'b', '7', '0']);
  execFileSync('mkfifo', ['-m', '600', p('run/initctl')]);
  writeFileSync(p('home/user/.profile'), 'export PS1=$\n');
  chownSync(p('home/user/.profile'), 1000, 1000);
  chownSync(p('home/user'), 1000, 1000);
  chmodSync(p('home/user'), 0o700);
  writeFileSync(p('empty-file'), '');
  writeFileSync(p(LONG), 'long\n');
  server = createServer();
  await new Promise<void>((r) => server!.listen(p('run/daemon.sock'), r));
  // Distinct mtimes everywhere, directories last.
  let t = 1_600_000_000;
  const all = (dir: string): string[] => readdirSync(dir).flatMap((n) => {
    const x = join(dir, n);
    return lstatSync(x).isDirectory() ? [...all(x), x] : [x];
  });
  for (const x of [...all(src), src]) lutimesSync(x, t, (t += 61));
  void utimesSync;
});

test.after(async () => {
  if (server) await new Promise((r) => server!.close(r));
  rmSync(base, { recursive: true, force: true });
});

/** Every path's type, mode, owner, size, content hash, link target, device, mtime, xattrs and hardlink group. */
function describeTree(root: string): string[] {
  const out: string[] = [];
  const firstByIno = new Map<number, string>();
  const walk = (rel: string): void => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = lstatSync(p);
      if (st.isSocket()) continue;
      let what = '';
      if (st.isFile()) {
        what = `file ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`;
        if (st.nlink > 1) {
          const first = firstByIno.get(st.ino);
          if (first) what += ` =${first}`;
          else firstByIno.set(st.ino, r);
        }
      } else if (st.isDirectory()) what = 'dir';
      else if (st.isSymbolicLink()) what = `symlink ${readlinkSync(p)}`;
      else if (st.isCharacterDevice() || st.isBlockDevice()) what = `${st.isCharacterDevice() ? 'char' : 'block'} ${st.rdev}`;
      else if (st.isFIFO()) what = 'fifo';
      const mode = st.isSymbolicLink() ? '' : (st.mode & 0o7777).toString(8);
      const x = execFileSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', p], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .join(',');
      out.push(`${r} ${what} ${mode} ${st.uid}:${st.gid} m${Math.floor(st.mtimeMs / 1000)} ${x}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** `tar -tvv` lines, directory sizes masked, leading "./" dropped, each entry's xattr lines sorted. */
function gnuListing(args: string[], input?: Buffer): string[] {
  const lines = execFileSync('tar', [...args, '--numeric-owner', '--xattrs', '--xattrs-include=*'], { input, maxBuffer: 64 << 20, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] })
    .trim()
    .split('\n');
  const entries: string[][] = [];
  for (const l of lines) {
    if (/^\s+x:/.test(l)) entries[entries.length - 1]!.push(l);
    else entries.push([l.replace(/^(d\S+\s+\S+\s+)\d+/, '$1DIRSIZE').replace(/(\d\d:\d\d )\.\//, '$1').replace(/ link to \.\//, ' link to ')]);
  }
  return entries.filter((e) => !/ \.\/?$/.test(e[0]!)).map(([head, ...x]) => [head, ...x.sort()].join('\n'));
}

test('apply(writeLayer(tree)) reproduces every path; a second diff is bit-identical', async () => {
  const store = openContentStore(join(base, 'store'));
  const warnings: string[] = [];
  const layer = await writeLayer(store, { root: src, changes: await changesFromTree(src), compression: 'gzip', onWarning: (w) => warnings.push(w) });
  assert.equal(warnings, ['Skipped socket "run/daemon.sock": tar cannot hold sockets']);
  const dst = join(base, 'dst');
  mkdirSync(dst);
  await applyLayer(await store.open(layer.descriptor.digest), dst);
  const want = describeTree(src);
  assert.ok(want.length > 20);
  assert.equal(describeTree(dst), want);
  const again = await writeLayer(store, { root: dst, changes: await changesFromTree(dst), compression: 'gzip' });
  assert.is(again.diffId, layer.diffId);
  assert.is(again.descriptor.digest, layer.descriptor.digest);

  // GNU tar reads our blob and lists the same entries as its own archive of the tree.
  const ours = gnuListing(['-tvvzf', store.blobPath(layer.descriptor.digest)]);
  const names = readdirSync(src).sort();
  const theirsTar = execFileSync('tar', ['-C', src, '--sort=name', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-cf', '-', ...names], { maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
  const theirs = gnuListing(['-tvvf', '-'], theirsTar);
  assert.equal(ours, theirs);
});

test('umoci unpacks the layer to the same tree', async () => {
  const store = openContentStore(join(base, 'store2'));
  const layer = await writeLayer(store, { root: src, changes: await changesFromTree(src), compression: 'gzip' });
  const layout = join(base, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  copyFileSync(store.blobPath(layer.descriptor.digest), join(blobs, layer.descriptor.digest.slice(7)));
  const put = (obj: unknown, mediaType: string): { mediaType: string; digest: string; size: number } => {
    const b = Buffer.from(JSON.stringify(obj));
    const hex = createHash('sha256').update(b).digest('hex');
    writeFileSync(join(blobs, hex), b);
    return { mediaType, digest: `sha256:${hex}`, size: b.length };
  };
  const config = put({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.diffId] } }, 'application/vnd.oci.image.config.v1+json');
  const manifest = put({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer.descriptor] }, 'application/vnd.oci.image.manifest.v1+json');
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'rt' } }] }));
  const bundle = join(base, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:rt`, bundle], { timeout: 120_000, stdio: ['ignore', 'ignore', 'pipe'] });
  // umoci restores everything we compare except trusted.* xattrs, which it filters by design.
  const drop = (lines: string[]): string[] => lines.map((l) => l.replace(/,?trusted\.kiln=0x00ff00/, ''));
  assert.equal(drop(describeTree(join(bundle, 'rootfs'))), drop(describeTree(src)));
});

test.run();
