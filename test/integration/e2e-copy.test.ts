/**
 * End-to-end builds, e2e-cases.md sections E (COPY/ADD) and F (layers and
 * whiteouts). See e2e-harness.ts for how every image is validated.
 */
import { execFileSync } from 'node:child_process';
import { lstat, readFile, readlink, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openContentStore } from '../../src/content/oci-layout-store.js';
import { readTar } from '../../src/layer/tar-reader.js';
import { buildCase, buildFails, closeEnv, e2eEnv, type E2EEnv } from './e2e-harness.js';

const t = suite('e2e-copy');
let env: E2EEnv;
t.before(async () => {
  env = await e2eEnv();
});
t.after(async () => {
  await closeEnv();
});

/** A tar made by the host's tar (an independent tool) from literal members. */
function makeTar(files: Record<string, string | null>, opts: { gzip?: boolean } = {}): Buffer {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  for (const [name, content] of Object.entries(files)) {
    if (content === null) execFileSync('mkdir', ['-p', join(dir, name)]);
    else {
      execFileSync('mkdir', ['-p', join(dir, name, '..')]);
      execFileSync('sh', ['-c', 'cat > "$1" && chmod 0644 "$1"', 'sh', join(dir, name)], { input: content });
    }
  }
  const tar = execFileSync('tar', ['-C', dir, '--owner=0', '--group=0', '-cf', '-', ...Object.keys(files)]);
  execFileSync('rm', ['-rf', dir]);
  return opts.gzip ? gzipSync(tar) : tar;
}

/** Entry names of one layer tar of an image. */
async function layerEntries(root: string, digest: string): Promise<string[]> {
  const store = openContentStore(root);
  const names: string[] = [];
  const { createGunzip } = await import('node:zlib');
  const src = (await store.open(digest as never)).pipe(createGunzip());
  for await (const e of readTar(src)) {
    names.push(e.header.name.replace(/^\.\//, '').replace(/\/$/, ''));
    for await (const _ of e.body) void _;
  }
  return names;
}

t('E2E-36 file destinations: trailing slash, existing dir, "." and empty', async () => {
  await buildCase(env, {
    ctx: { testfile: 'contents0' },
    dockerfile: `FROM busybox
COPY testfile /sample/
COPY testfile /asfile
WORKDIR /var/www
COPY testfile .
ENV empty=""
COPY testfile $empty
RUN [ "$(cat /sample/testfile)" = contents0 ] && [ "$(cat /asfile)" = contents0 ] && [ -f /var/www/testfile ] && [ -d /sample ] && [ -f /asfile ]
`,
  });
});

t('E2E-37 directory sources copy their contents; dir, dir/ and dir/. alike', async () => {
  const r = await buildCase(env, {
    ctx: { 'sub/dir1/dir2/foo': 'foo-contents' },
    dockerfile: `FROM scratch
COPY sub/dir1/ subdest4
COPY sub/dir1/. subdest5
COPY sub/dir1 subdest6
COPY . all/
`,
  });
  for (const p of ['subdest4/dir2/foo', 'subdest5/dir2/foo', 'subdest6/dir2/foo', 'all/sub/dir1/dir2/foo']) assert.ok(await r.exists(p), p);
  assert.not.ok(await r.exists('subdest6/dir1'));
});

t('E2E-38 wildcard sources', async () => {
  const r = await buildCase(env, {
    ctx: { 'foo.go': 'foo-contents', 'bar.go': 'bar-contents', 'sub/dir1/dir2/foo': 'foo-contents' },
    dockerfile: `FROM scratch
COPY *.go /gofiles/
COPY f*.go foo2.go
COPY sub/* /subdest/
COPY sub/*/dir2/foo /subdest2/
COPY sub/*/dir2/foo /subdest3/bar
`,
  });
  assert.ok(await r.exists('gofiles/foo.go'));
  assert.ok(await r.exists('gofiles/bar.go'));
  assert.is(await r.read('foo2.go'), 'foo-contents');
  assert.ok(await r.exists('subdest/dir2/foo'));
  assert.ok(await r.exists('subdest2/foo'));
  assert.is(await r.read('subdest3/bar'), 'foo-contents');
});

t('E2E-39 a wildcard that matches nothing', async () => {
  // BuildKit marks every COPY source AllowEmptyWildcard: an unmatched wildcard next to a
  // match is fine. (Buildah fails when ALL sources are unmatched wildcards; not asserted.)
  const r = await buildCase(env, { ctx: { foo: 'contents0' }, dockerfile: `FROM scratch\nCOPY foo nomatch* /\n` });
  assert.ok(await r.exists('foo'));
  await buildFails(env, { ctx: { foo: 'x' }, dockerfile: `FROM scratch\nCOPY missing-file /\n` }, 'not found');
});

t('E2E-40 copying into an existing directory merges; existing owners stay', async () => {
  await buildCase(env, {
    ctx: { 'test_dir/test_file': 'test1' },
    dockerfile: `FROM busybox
RUN mkdir /exists && touch /exists/exists_file && chown -R 1:1 /exists
COPY test_dir/ /exists/
RUN [ "$(stat -c %u:%g /exists)" = 1:1 ] && [ "$(stat -c %u:%g /exists/exists_file)" = 1:1 ] && [ "$(stat -c %u:%g /exists/test_file)" = 0:0 ]
COPY test_dir/test_file /new_dir/
RUN [ "$(stat -c %u:%g /new_dir)" = 0:0 ]
`,
  });
});

t('E2E-41 --chown between stages', async () => {
  const df = `FROM busybox AS source
RUN touch /file && chown 100:200 /file && mkdir -p /dir/subdir && touch /dir/subdir/nested && chown 100:200 /dir && chown 101:201 /dir/subdir && chown 102:202 /dir/subdir/nested
FROM busybox AS base
RUN mkdir -p /existingdir && chown 500:600 /existingdir
FROM base AS plain
COPY --from=source /file .
COPY --from=source /dir /dir
COPY --from=source /dir/. /existingdir
RUN [ "$(stat -c %u:%g /file)" = 100:200 ] && [ "$(stat -c %u:%g /dir)" = 0:0 ] && [ "$(stat -c %u:%g /dir/subdir)" = 101:201 ] && [ "$(stat -c %u:%g /existingdir)" = 500:600 ] && [ "$(stat -c %u:%g /existingdir/subdir/nested)" = 102:202 ]
FROM base AS chowned
COPY --from=source --chown=300:400 /dir /dir
COPY --from=source --chown=300:400 /dir/. /existingdir
RUN [ "$(stat -c %u:%g /dir)" = 300:400 ] && [ "$(stat -c %u:%g /dir/subdir/nested)" = 300:400 ] && [ "$(stat -c %u:%g /existingdir)" = 500:600 ] && [ "$(stat -c %u:%g /existingdir/subdir)" = 300:400 ]
`;
  await buildCase(env, { dockerfile: df, target: 'plain' });
  await buildCase(env, { dockerfile: df, target: 'chowned' });
});

t('E2E-42 --chown with names, uid:group, ARG/ENV, created destination', async () => {
  const r = await buildCase(env, {
    ctx: { foo: 'foo-contents', 'bar/sub': '' },
    dockerfile: `FROM busybox AS base
ENV owner 1000
ARG group
RUN mkdir -m 0777 /out
COPY --chown=daemon foo /
COPY --chown=1000:nobody bar /baz
COPY --chown=\${owner}:\${group} foo /foobis
COPY --chown=daemon:daemon . /dest
RUN stat -c "%U %G" /foo > /out/fooowner && stat -c "%u %G" /baz/sub > /out/subowner && stat -c "%u %G" /foobis > /out/foobisowner && stat -c "%U %G" /dest > /out/destowner
FROM scratch
COPY --from=base /out /
`,
    buildArgs: { group: 'nobody' },
  });
  assert.is((await r.read('fooowner')).trim(), 'daemon daemon');
  assert.is((await r.read('subowner')).trim(), '1000 nobody');
  assert.is((await r.read('foobisowner')).trim(), '1000 nobody');
  assert.is((await r.read('destowner')).trim(), 'daemon daemon');
});

t('E2E-43 --chmod octal, created parents, ARG in the mode, bad values', async () => {
  const ctx = { foo: { content: 'foo-contents', mode: 0o600 }, bar: { content: 'bar-contents', mode: 0o700 } };
  const r = await buildCase(env, {
    ctx,
    dockerfile: `FROM busybox AS base
RUN mkdir -m 0777 /out
COPY --chmod=0644 foo /
COPY --chmod=777 bar /baz
COPY --chmod=0 foo /foobis
COPY --chmod=777 foo /parent/foo
COPY --chmod=770 foo /parent/sub/foo
ARG mode
COPY --chmod=\${mode} foo /footer
RUN for p in /foo /baz /foobis /parent /parent/sub /footer; do stat -c "%04a" $p; done > /out/perms
FROM scratch
COPY --from=base /out /
`,
    buildArgs: { mode: '755' },
  });
  assert.is((await r.read('perms')).trim().split('\n').join(' '), '0644 0777 0000 0777 0770 0755');
  for (const bad of ['64a', '10000']) {
    await buildFails(env, { ctx, dockerfile: `FROM busybox\nCOPY --chmod=${bad} foo /\n` }, `invalid chmod parameter: '${bad}'. it should be octal string and between 0 and 07777`);
  }
});

t('E2E-44 --chmod in symbolic form matches chmod(1)', async () => {
  const modes = ['go-w', 'u=rw,g=r,o=r', 'a+X', 'u+rw,g+r,o-x,o+w'];
  const lines = modes.map((m, i) => `COPY --chmod=${m} file /f${i}\nCOPY --chmod=${m} dir /d${i}`).join('\n');
  const checks = modes
    .map((m, i) => `cp -a /ref/file /r${i} && chmod ${m} /r${i} && [ "$(stat -c %A /f${i})" = "$(stat -c %A /r${i})" ] && cp -a /ref/dir /rd${i} && chmod ${m} /rd${i}/x && [ "$(stat -c %A /d${i}/x)" = "$(stat -c %A /rd${i}/x)" ]`)
    .join(' && ');
  await buildCase(env, {
    ctx: { file: { content: 'f', mode: 0o666 }, 'dir/x': { content: 'x', mode: 0o124 } },
    dockerfile: `FROM busybox
COPY file /ref/file
COPY dir /ref/dir/
${lines}
RUN ${checks}
`,
  });
});

t('E2E-45 symlinks in the context', async () => {
  const r = await buildCase(env, {
    ctx: {
      bar: 'bar-contents',
      foo: { link: 'bar' },
      'sub/lfile': 'lfile-contents',
      'sub/l0': { link: 'subfile' },
      'sub/subfile': 'subfile-contents',
      'sub/l1': { link: 'second' },
      'sub/second': { link: 'baz' },
      'sub/baz': 'baz-contents',
      link: { link: 'sub' },
      'd/inner': { link: '../bar' },
    },
    dockerfile: `FROM scratch
COPY foo /
COPY sub/l* /alllinks/
COPY link/lfile /vialink
COPY d /d
COPY . /whole/
`,
  });
  const root = await r.fs();
  assert.ok((await lstat(join(root, 'foo'))).isFile());
  assert.is(await r.read('foo'), 'bar-contents');
  assert.is(await r.read('alllinks/l0'), 'subfile-contents');
  assert.is(await r.read('alllinks/l1'), 'baz-contents');
  assert.ok(await r.exists('alllinks/lfile'));
  assert.is(await r.read('vialink'), 'lfile-contents');
  assert.is(await readlink(join(root, 'd/inner')), '../bar');
  assert.is(await readlink(join(root, 'whole/foo')), 'bar');
});

t('E2E-46 symlinks in the source stage and at the destination', async () => {
  const r = await buildCase(env, {
    ctx: {},
    dockerfile: `FROM busybox AS build
RUN mkdir -p /out/sub && ln -s /out/sub /sub && ln -s out/sub /sub2 && echo -n data > /sub/foo
RUN mkdir -p /usr/local/hbase && ln -s /usr/local/hbase /etc/hbase
RUN mkdir /gone && ln -s /gone /dangling && rmdir /gone
COPY Dockerfile /etc/hbase
COPY Dockerfile /dangling/
RUN [ -L /etc/hbase ] && [ -f /usr/local/hbase/Dockerfile ] && [ -f /gone/Dockerfile ]
FROM scratch
COPY --from=build /sub/foo /foo
COPY --from=build /sub2/foo /bar
`,
  });
  assert.is(await r.read('foo'), 'data');
  assert.is(await r.read('bar'), 'data');
});

t('E2E-47 WORKDIR through a symlink', async () => {
  await buildCase(env, {
    ctx: {},
    dockerfile: `FROM busybox
RUN mkdir -p /var/lib/tempest && ln -sf /var/lib/tempest /tempest
WORKDIR /tempest
RUN touch here
COPY Dockerfile ./Dockerfile
RUN [ -L /tempest ] && [ -f /var/lib/tempest/here ] && [ -f /var/lib/tempest/Dockerfile ]
`,
  });
  await buildCase(env, {
    dockerfile: `FROM busybox
RUN mkdir -p /var/lib && ln -sf /var/lib/tempest2 /tempest
WORKDIR /tempest/lowerdir
RUN [ -L /tempest ] && [ -d /var/lib/tempest2/lowerdir ]
`,
  });
});

t('E2E-48 ADD unpacks local archives; COPY does not', async () => {
  const tar = makeTar({ foo: 'content0' });
  const r = await buildCase(env, {
    ctx: {
      't.tar': tar,
      't.tar.gz': gzipSync(tar),
      'd.tar.gz': makeTar({ 'etc/dnf/': null, 'etc/dnf/dnf.conf': 'conf' }, { gzip: true }),
      'x.tar.xz': execFileSync('xz', ['-c'], { input: tar }),
      'b.tar.bz2': execFileSync('bzip2', ['-c'], { input: tar }),
      'fake.tar': 'not a tar at all',
    },
    dockerfile: `FROM scratch
ADD t.tar /x/
ADD t.tar.gz /y/
ADD d.tar.gz /
COPY t.tar.gz /z/
ADD --unpack=false t.tar.gz /w/
ADD x.tar.xz /xz/
ADD b.tar.bz2 /bz/
ADD fake.tar /fake/
`,
  });
  assert.is(await r.read('x/foo'), 'content0');
  assert.is(await r.read('y/foo'), 'content0');
  assert.is(await r.read('etc/dnf/dnf.conf'), 'conf');
  assert.equal(await readFile(join(await r.fs(), 'z/t.tar.gz')), gzipSync(tar));
  assert.equal(await readFile(join(await r.fs(), 'w/t.tar.gz')), gzipSync(tar));
  assert.is(await r.read('xz/foo'), 'content0');
  assert.is(await r.read('bz/foo'), 'content0');
  assert.is(await r.read('fake/fake.tar'), 'not a tar at all');
});

t('ADD --chown/--chmod apply to the entries of an unpacked archive', async () => {
  const r = await buildCase(env, {
    ctx: { 't.tar': makeTar({ 'd/': null, 'd/f': 'x' }) },
    dockerfile: `FROM busybox\nADD --chown=daemon:daemon --chmod=0750 t.tar /u/\nRUN [ "$(stat -c '%u:%g %a' /u/d/f)" = "1:1 750" ] && [ "$(stat -c '%u:%g' /u/d)" = "1:1" ]\n`,
  });
  assert.ok(await r.exists('u/d/f'));
});

t('E2E-49 a symlink in an unpacked archive cannot write outside the root', async () => {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  execFileSync('ln', ['-s', '../tmp/symlink-target', join(dir, 'symlink')]);
  const tar = execFileSync('tar', ['-C', dir, '-cf', '-', 'symlink']);
  execFileSync('rm', ['-rf', dir]);
  const r = await buildCase(env, {
    ctx: { 't.tar': tar, foo: 'foo' },
    dockerfile: `FROM scratch\nADD t.tar /\nCOPY foo /symlink/\n`,
  });
  assert.is(await r.read('tmp/symlink-target/foo'), 'foo');
  assert.not.ok(await stat('/tmp/symlink-target/foo').then(() => true, () => false), 'nothing written on the host');
});

t('E2E-50 odd file names; copying the same tree twice', async () => {
  const r = await buildCase(env, {
    ctx: { 'test-äöü.txt': 'foo', 'test-%C3%A4%C3%B6%C3%BC.txt': 'bar', 'test+aou.txt': 'baz', 'sub/dir1/dir2/foo': 'x' },
    dockerfile: `FROM scratch
COPY test-äöü.txt /
COPY test-%C3%A4%C3%B6%C3%BC.txt /
COPY test+aou.txt /
COPY sub sub
COPY sub sub
`,
  });
  assert.is(await r.read('test-äöü.txt'), 'foo');
  assert.is(await r.read('test-%C3%A4%C3%B6%C3%BC.txt'), 'bar');
  assert.is(await r.read('test+aou.txt'), 'baz');
  assert.ok(await r.exists('sub/dir1/dir2/foo'));
});

t('COPY --parents keeps source paths under the destination (BuildKit 1.7 syntax)', async () => {
  const r = await buildCase(env, {
    ctx: { 'x/a.txt': 'a', 'x/b.txt': 'b', 'y/z/c.txt': 'c', 'y/z/d.bin': 'd', top: 't' },
    dockerfile: `FROM scratch\nCOPY --parents x/*.txt y/z top /dest/\n`,
  });
  assert.is(await r.read('dest/x/a.txt'), 'a');
  assert.is(await r.read('dest/x/b.txt'), 'b');
  assert.is(await r.read('dest/y/z/c.txt'), 'c');
  assert.is(await r.read('dest/y/z/d.bin'), 'd');
  assert.is(await r.read('dest/top'), 't');
  assert.not.ok(await r.exists('dest/a.txt'));
});

t('E2E-51 deleting a file from a lower layer writes a whiteout', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox
RUN echo test > /file
RUN rm /file
RUN [ ! -e /file ]
`,
  });
  // `RUN [ ! -e /file ]` changes nothing: no layer (empty_layer in history).
  assert.ok(r.config.history!.at(-1)!.empty_layer);
  const rmLayer = r.manifest.layers[r.manifest.layers.length - 1]!;
  const names = await layerEntries(env.root, rmLayer.digest);
  assert.equal(names, ['.wh.file'], 'the whiteout and no other change');
  assert.not.ok(await r.exists('file'));
});

t('E2E-52 removing and recreating a directory hides the old contents', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox
RUN mkdir /dir1 && touch /dir1/f1
RUN rm -rf /dir1 && mkdir /dir1 && touch /dir1/f2
RUN touch /dir1/f3
RUN [ -f /dir1/f2 ] && [ ! -e /dir1/f1 ]
RUN echo x > /x && mkdir /y
RUN rm /x && mkdir /x && rm -r /y && echo y > /y
`,
  });
  const layers = r.manifest.layers;
  // Layers: …, mkdir dir1, rm+mkdir, touch f3, (check: empty), x/y, swap.
  const second = await layerEntries(env.root, layers[layers.length - 4]!.digest);
  assert.ok(second.includes('dir1/.wh..wh..opq') || second.includes('dir1/.wh.f1'), JSON.stringify(second));
  assert.ok(second.includes('dir1/f2'));
  assert.ok(await r.exists('dir1/f2'));
  assert.ok(await r.exists('dir1/f3'));
  assert.not.ok(await r.exists('dir1/f1'));
  assert.ok((await stat(join(await r.fs(), 'x'))).isDirectory());
  assert.is(await r.read('y'), 'y\n');
});

t('E2E-53 changes under a VOLUME directory are kept (BuildKit)', async () => {
  // DIVERGENCE from the classic docker builder, which discarded them; BuildKit keeps them.
  const r = await buildCase(env, { dockerfile: `FROM busybox\nVOLUME /data\nRUN mkdir -p /data && echo -n kept > /data/file\n` });
  assert.is(await r.read('data/file'), 'kept');
});

t.run();
void readdir;
