/** COPY semantics on real temp directories (no sandbox needed). */
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseModeSpec } from '../../../src/build/chmod-spec.js';
import { copyFiles, expandSource } from '../../../src/build/copy-files.js';

const execFileP = promisify(execFile);

async function rejects(p: Promise<unknown>, re: RegExp, msg?: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(re.test((err as Error).message), msg ?? (err as Error).message);
    return;
  }
  assert.unreachable(msg ?? 'should have failed');
}

async function tree(files: Record<string, string | { link: string }>): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'kiln-copy-unit-'));
  for (const [p, v] of Object.entries(files)) {
    await mkdir(join(d, p, '..'), { recursive: true });
    if (typeof v === 'string') await writeFile(join(d, p), v);
    else await symlink(v.link, join(d, p));
  }
  return d;
}

test('wildcards expand per component; a missing plain source is "not found"', async () => {
  const src = await tree({ 'a.go': '1', 'b.go': '2', 'sub/x/y': '3' });
  const m = await expandSource({ srcRoot: src }, '*.go');
  assert.equal(m.map((x) => x.rel), ['a.go', 'b.go']);
  assert.equal((await expandSource({ srcRoot: src }, 'sub/*/y')).map((x) => x.rel), ['sub/x/y']);
  const dest = await mkdtemp(join(tmpdir(), 'kiln-copy-dest-'));
  await rejects(copyFiles({ srcRoot: src, fromContext: true, sources: ['missing'], dest: '/', workdir: '/', destRoot: dest }), /not found/);
  await rm(src, { recursive: true });
  await rm(dest, { recursive: true });
});

test('directory contents, trailing slash, file destination, chmod on created dirs', async () => {
  const src = await tree({ 'd/e/f': 'F', file: 'X' });
  const dest = await mkdtemp(join(tmpdir(), 'kiln-copy-dest-'));
  await copyFiles({ srcRoot: src, fromContext: true, sources: ['d'], dest: 'out', workdir: '/w', destRoot: dest });
  assert.is(await readFile(join(dest, 'w/out/e/f'), 'utf8'), 'F');
  await copyFiles({ srcRoot: src, fromContext: true, sources: ['file'], dest: '/asdir/', workdir: '/', destRoot: dest });
  assert.is(await readFile(join(dest, 'asdir/file'), 'utf8'), 'X');
  await copyFiles({ srcRoot: src, fromContext: true, sources: ['file'], dest: '/asfile', workdir: '/', destRoot: dest });
  assert.ok((await stat(join(dest, 'asfile'))).isFile());
  await copyFiles({ srcRoot: src, fromContext: true, sources: ['file'], dest: '/p/q/r', workdir: '/', destRoot: dest, chmod: parseModeSpec('0750') });
  assert.is((await stat(join(dest, 'p/q'))).mode & 0o7777, 0o750);
  assert.is((await stat(join(dest, 'p/q/r'))).mode & 0o7777, 0o750);
  await rm(src, { recursive: true });
  await rm(dest, { recursive: true });
});

test('symlinks: named sources are followed inside the root, links inside dirs are kept, a dest link resolves inside the rootfs', async () => {
  const src = await tree({ real: 'R', link: { link: '/real' }, 'dir/l': { link: '../real' }, escape: { link: '../../../../etc/passwd' } });
  const dest = await mkdtemp(join(tmpdir(), 'kiln-copy-dest-'));
  await copyFiles({ srcRoot: src, fromContext: true, sources: ['link'], dest: '/got', workdir: '/', destRoot: dest });
  assert.is(await readFile(join(dest, 'got'), 'utf8'), 'R', 'an absolute link resolves inside the source root');
  await copyFiles({ srcRoot: src, fromContext: true, sources: ['dir'], dest: '/dir', workdir: '/', destRoot: dest });
  assert.is(await readlink(join(dest, 'dir/l')), '../real');
  await rejects(copyFiles({ srcRoot: src, fromContext: true, sources: ['escape'], dest: '/e', workdir: '/', destRoot: dest }), /not found/, 'a link out of the context resolves inside it (and is missing there)');
  // Destination: /target is a link to /elsewhere (absolute): files land inside the rootfs.
  await symlink('/elsewhere', join(dest, 'target'));
  await copyFiles({ srcRoot: src, fromContext: true, sources: ['real'], dest: '/target/', workdir: '/', destRoot: dest });
  assert.is(await readFile(join(dest, 'elsewhere/real'), 'utf8'), 'R');
  assert.ok((await lstat(join(dest, 'target'))).isSymbolicLink());
  await rm(src, { recursive: true });
  await rm(dest, { recursive: true });
});

test('.dockerignore filter: excluded files are skipped, excluded dirs kept only for re-included children', async () => {
  const src = await tree({ 'keep/a': '1', 'drop/b': '2', 'mixed/x': '3', 'mixed/y': '4' });
  const dest = await mkdtemp(join(tmpdir(), 'kiln-copy-dest-'));
  const excluded = (rel: string) => rel === 'drop' || rel.startsWith('drop/') || rel === 'mixed' || (rel.startsWith('mixed/') && rel !== 'mixed/y');
  const include = (rel: string, isDir: boolean) => !excluded(rel) || (isDir && rel === 'mixed');
  await copyFiles({ srcRoot: src, fromContext: true, include, sources: ['.'], dest: '/c/', workdir: '/', destRoot: dest });
  assert.ok(await stat(join(dest, 'c/keep/a')).then(() => true));
  assert.not.ok(await stat(join(dest, 'c/drop')).then(() => true, () => false));
  assert.ok(await stat(join(dest, 'c/mixed/y')).then(() => true));
  assert.not.ok(await stat(join(dest, 'c/mixed/x')).then(() => true, () => false));
  await rm(src, { recursive: true });
  await rm(dest, { recursive: true });
});


test('linkFiles: files whose owner, mode and times would not change are hard links; others copies', async () => {
  const src = await tree({ 'd/small': 's', 'd/big': 'b'.repeat(300 * 1024), 'd/sub/x': 'x', 'd/ln': { link: 'small' } });
  const dest = await mkdtemp(join(tmpdir(), 'kiln-copy-dest-'));
  const ino = async (p: string) => (await lstat(p)).ino;
  await copyFiles({ srcRoot: src, fromContext: false, sources: ['d'], dest: '/linked/', workdir: '/', destRoot: dest, linkFiles: true });
  for (const f of ['small', 'big', 'sub/x']) assert.is(await ino(join(dest, 'linked', f)), await ino(join(src, 'd', f)), f);
  assert.is(await readlink(join(dest, 'linked/ln')), 'small', 'a symlink is made, not linked');
  const me = await lstat(join(src, 'd/small'));
  await copyFiles({ srcRoot: src, fromContext: false, sources: ['d'], dest: '/same-owner/', workdir: '/', destRoot: dest, linkFiles: true, chown: { uid: me.uid, gid: me.gid } });
  assert.is(await ino(join(dest, 'same-owner/small')), me.ino, '--chown to the owner it has changes nothing');
  await copyFiles({ srcRoot: src, fromContext: false, sources: ['d'], dest: '/moded/', workdir: '/', destRoot: dest, linkFiles: true, chmod: parseModeSpec('600') });
  assert.is.not(await ino(join(dest, 'moded/small')), me.ino);
  assert.is((await lstat(join(dest, 'moded/big'))).mode & 0o777, 0o600);
  assert.is((await lstat(join(src, 'd/big'))).mode & 0o777, me.mode & 0o777, 'the source keeps its mode');
  await copyFiles({ srcRoot: src, fromContext: true, sources: ['d'], dest: '/ctx/', workdir: '/', destRoot: dest, linkFiles: true });
  assert.is.not(await ino(join(dest, 'ctx/small')), me.ino, 'context files are never linked');
  await copyFiles({ srcRoot: src, fromContext: false, sources: ['d'], dest: '/plain/', workdir: '/', destRoot: dest });
  assert.is.not(await ino(join(dest, 'plain/small')), me.ino, 'only when asked');
  await rm(src, { recursive: true });
  await rm(dest, { recursive: true });
});

test('linkFiles across filesystems copies every file', async () => {
  const src = await tree({ 'd/a': 'A', 'd/b': 'B'.repeat(200 * 1024) });
  // /dev/shm is a tmpfs: a link from there to the temp dir's filesystem fails with EXDEV.
  const dest = await mkdtemp(join('/dev/shm', 'kiln-copy-dest-'));
  assert.is.not((await stat(dest)).dev, (await stat(src)).dev, 'two filesystems');
  await copyFiles({ srcRoot: src, fromContext: false, sources: ['d'], dest: '/x/', workdir: '/', destRoot: dest, linkFiles: true });
  assert.is(await readFile(join(dest, 'x/a'), 'utf8'), 'A');
  assert.is((await readFile(join(dest, 'x/b'), 'utf8')).length, 200 * 1024);
  await rm(src, { recursive: true });
  await rm(dest, { recursive: true });
});

test('COPY --from keeps xattrs of what it copies (not overlay\'s own); COPY from the context does not', async () => {
  const src = await tree({ 'd/f': 'F', 'd/sub/g': 'G' });
  const set = (p: string, name: string, value: string) => execFileP('setfattr', ['-n', name, '-v', value, join(src, p)]);
  await set('d/f', 'user.kiln.cap', 'yes');
  await set('d/f', 'user.overlay.origin', 'private');
  await set('d/sub', 'user.kiln.dir', 'also');
  const dest = await mkdtemp(join(tmpdir(), 'kiln-copy-dest-'));
  const xattrsOf = async (p: string) => (await execFileP('getfattr', ['-h', '-d', '-m', '-', '--absolute-names', join(dest, p)])).stdout.split('\n').filter((l) => l.includes('=')).sort();
  // --chmod forces a copy even with linkFiles.
  await copyFiles({ srcRoot: src, fromContext: false, sources: ['d'], dest: '/img/', workdir: '/', destRoot: dest, linkFiles: true, chmod: parseModeSpec('640') });
  assert.equal(await xattrsOf('img/f'), ['user.kiln.cap="yes"']);
  assert.equal(await xattrsOf('img/sub'), ['user.kiln.dir="also"']);
  assert.equal(await xattrsOf('img/sub/g'), []);
  await copyFiles({ srcRoot: src, fromContext: true, sources: ['d'], dest: '/ctx/', workdir: '/', destRoot: dest });
  assert.equal(await xattrsOf('ctx/f'), []);
  await rm(src, { recursive: true });
  await rm(dest, { recursive: true });
});

test.run();
