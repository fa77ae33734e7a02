/**
 * End-to-end builds, e2e-cases.md sections G (ONBUILD), H (heredocs),
 * I (.dockerignore, all of conformance/dockerignore/context-trees.json as real
 * builds) and J (cache). See e2e-harness.ts for how every image is validated.
 */
import { lstat, readFile, readdir, readlink, rename, rm, writeFile, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conformanceRoot } from '../helpers/repo.js';
import { buildCase, buildFails, closeEnv, e2eEnv, writeContext, type Ctx, type E2EEnv } from './e2e-harness.js';

const t = suite('e2e-misc');
let env: E2EEnv;
t.before(async () => {
  env = await e2eEnv();
});
t.after(async () => {
  await closeEnv();
});

// ---------------- G. ONBUILD ----------------

t('E2E-54 ONBUILD runs in the child build only, then is cleared', async () => {
  const pRef = `${env.reg.host}/onbuild-parent:1`;
  const p = await buildCase(env, {
    dockerfile: `FROM busybox\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n`,
    opts: { tags: [pRef], push: true },
  });
  assert.equal(p.config.config!.OnBuild, ['RUN mkdir -p /out && echo -n 11 >> /out/foo']);
  assert.ok(p.result.pushed.includes(pRef));
  const cRef = `${env.reg.host}/onbuild-child:1`;
  const c = await buildCase(env, { dockerfile: `FROM ${pRef}\n`, opts: { tags: [cRef], push: true } });
  assert.is(await c.read('out/foo'), '11');
  assert.ok(!c.config.config!.OnBuild || c.config.config!.OnBuild.length === 0);
  const g = await buildCase(env, { dockerfile: `FROM ${cRef}\n` });
  assert.is(await g.read('out/foo'), '11');
});

t('E2E-55 ONBUILD in a stage fires when a later stage uses it as base', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox AS base
ONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo
FROM base AS mid
RUN cp /out/foo /out/bar
FROM mid AS child
RUN [ "$(cat /out/foo)" = 11 ]
FROM scratch
COPY --from=child /out/bar /
`,
  });
  assert.is(await r.read('bar'), '11');
});

t('E2E-56 ONBUILD errors; ONBUILD with a heredoc', async () => {
  await buildFails(env, { dockerfile: `FROM busybox\nONBUILD FROM scratch\n` }, "FROM isn't allowed as an ONBUILD trigger");
  await buildFails(env, { dockerfile: `FROM busybox\nONBUILD ONBUILD RUN x\n` }, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  const base = await buildCase(env, { dockerfile: `FROM busybox\nONBUILD RUN <<EOF\necho "hello world" >> /dest\nEOF\n` });
  const child = await buildCase(env, { dockerfile: `FROM ${base.result.names[0]}\n` });
  assert.is(await child.read('dest'), 'hello world\n');
});

// ---------------- H. Heredocs ----------------

t('E2E-57 RUN heredocs: script, shebang, pipes and file descriptors', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox AS build
WORKDIR /dest
RUN <<EOF
echo "i am" >> /dest/basic
whoami >> /dest/basic
EOF
RUN <<EOF
#!/bin/awk -f
BEGIN { print "hello" > "/dest/shebang" }
EOF
RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \\
    cat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2
hello WORLD
EOF1
HELLO world
EOF2
RUN <<EOF 3<<IN1 awk -f -
BEGIN { while ((getline line < "/proc/self/fd/3") > 0) print tolower(line) > "./fd3" }
EOF
HELLO fd
IN1
FROM scratch
COPY --from=build /dest /
`,
  });
  assert.is(await r.read('basic'), 'i am\nroot\n');
  assert.is(await r.read('shebang'), 'hello\n');
  assert.is(await r.read('out1'), 'hello world\n');
  assert.is(await r.read('out2'), 'HELLO WORLD\n');
  assert.is(await r.read('fd3'), 'hello fd\n');
});

t('E2E-58 COPY heredocs: several files, --chmod, names', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox AS build
WORKDIR /dest
COPY <<EOF single
single file
EOF
COPY <<EOF <<EOF2 double/
first file
EOF
second file
EOF2
COPY --chmod=0751 <<EOF /dest/perm
x
EOF
RUN stat -c %04a /dest/perm > /dest/permout
FROM scratch
COPY --from=build /dest /
`,
  });
  assert.is(await r.read('single'), 'single file\n');
  assert.is(await r.read('double/EOF'), 'first file\n');
  assert.is(await r.read('double/EOF2'), 'second file\n');
  assert.is(await r.read('permout'), '0751\n');
  await buildFails(env, { dockerfile: `FROM busybox\nCOPY /foo <<EOF\nx\nEOF\n` }, 'COPY cannot accept a heredoc as a destination');
});

t('E2E-59 heredoc quoting, expansion, tab stripping, backslashes', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox AS build
ARG name=world
COPY <<EOF /dest/c1
Hello \${name}!
EOF
COPY <<'EOF' /dest/c2
Hello \${name}!
EOF
COPY <<EOF /dest/q1
Hello '\${name}'!
EOF
COPY <<-EOF /dest/tabs
\tbar
EOF
COPY <<EOF /dest/slash
\\$ \\\\
EOF
COPY <<"EOF" /dest/rawslash
\\$ \\\\
EOF
RUN <<EOF
name="new world"
echo "Hello \${name}!" > /dest/r2
EOF
FROM scratch
COPY --from=build /dest /
`,
  });
  assert.is(await r.read('c1'), 'Hello world!\n');
  assert.is(await r.read('c2'), 'Hello ${name}!\n');
  assert.is(await r.read('q1'), "Hello 'world'!\n");
  assert.is(await r.read('tabs'), 'bar\n');
  assert.is(await r.read('slash'), '$ \\\n');
  assert.is(await r.read('rawslash'), '\\$ \\\\\n');
  assert.is(await r.read('r2'), 'Hello new world!\n');
});

// ---------------- I. .dockerignore ----------------

interface TreeCase {
  id: string;
  files: Record<string, string | { type: 'dir' } | { type: 'symlink'; target: string }>;
  excludePatterns?: string[];
  ignoreFile?: string;
  ignoreText?: string;
  dockerfileName?: string;
  expectListing?: string[];
  expectPresent?: string[];
  expectAbsent?: string[];
  expectError?: string;
}

async function listTree(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(join(root, rel))).sort()) {
    const p = rel ? `${rel}/${n}` : n;
    const st = await lstat(join(root, p));
    if (st.isSymbolicLink()) out.push(`symlink:${await readlink(join(root, p))} ${p}`);
    else if (st.isDirectory()) {
      out.push(`dir ${p}`);
      out.push(...(await listTree(root, p)));
    } else out.push(`file ${p}`);
  }
  return out;
}

t('E2E-60 .dockerignore end to end: every context-trees.json case as a real build', async () => {
  const data = JSON.parse(await readFile(join(conformanceRoot, 'dockerignore', 'context-trees.json'), 'utf8')) as { cases: TreeCase[] };
  assert.ok(data.cases.length >= 25);
  for (const c of data.cases) {
    const ctx: Ctx = {};
    for (const [p, v] of Object.entries(c.files)) {
      if (typeof v === 'string') ctx[p] = v;
      else if (v.type === 'dir') ctx[p] = { dir: true };
      else ctx[p] = { link: v.target };
    }
    const dir = join(env.work, `tree-${c.id}`);
    await writeContext(dir, ctx);
    // Walker-level cases give patterns directly: keep both the Dockerfile and its
    // <Dockerfile>.dockerignore outside the context, so neither shows up in it.
    let file: string;
    if (c.ignoreFile) {
      await writeFile(join(dir, c.ignoreFile), c.ignoreText ?? '');
      file = join(dir, c.dockerfileName ?? 'Dockerfile');
    } else {
      const outside = join(env.work, `tree-df-${c.id}`);
      await mkdir(outside, { recursive: true });
      file = join(outside, 'Dockerfile');
      await writeFile(`${file}.dockerignore`, (c.excludePatterns ?? []).join('\n') + '\n');
    }
    const spec = { dockerfile: 'FROM scratch\nCOPY . /ctx/\n', contextDir: dir, file };
    if (c.expectError) {
      await buildFails(env, spec, c.expectError);
      continue;
    }
    let r;
    try {
      r = await buildCase(env, spec);
    } catch (err) {
      throw new Error(`${c.id}: ${(err as Error).message}`);
    }
    const root = join(await r.fs(), 'ctx');
    const exists = async (p: string) => lstat(join(root, p)).then(() => true, () => false);
    if (c.expectListing) assert.equal(await listTree(root), c.expectListing, c.id);
    for (const p of c.expectPresent ?? []) assert.ok(await exists(p), `${c.id}: ${p} present`);
    for (const p of c.expectAbsent ?? []) assert.not.ok(await exists(p), `${c.id}: ${p} absent`);
  }
  // An ignored file named by COPY is not found; a context bind sees the filtered context.
  await buildFails(env, { ctx: { 'test1.txt': 'x', '.dockerignore': 'test1.txt\n' }, dockerfile: `FROM scratch\nCOPY test1.txt /\n` }, 'not found');
  await buildCase(env, {
    ctx: { 'keep.txt': 'k', 'test1.txt': 'x', '.dockerignore': 'test1.txt\n' },
    dockerfile: `FROM busybox\nRUN --mount=target=/context [ -f /context/keep.txt ] && [ ! -e /context/test1.txt ]\n`,
  });
});

// ---------------- J. Cache ----------------

const stepsCached = (r: { result: { stats: { steps: number; cached: number } } }) => r.result.stats;

t('E2E-61 cache hits and misses for context files', async () => {
  const df = `FROM busybox AS base
COPY foo* files/
RUN head -c 100 /dev/urandom | sha256sum > unique
COPY bar files/
FROM scratch
COPY --from=base unique /
`;
  const a = await buildCase(env, { ctx: { foo1: 'f1', foo2: 'f2', bar: 'b' }, dockerfile: df });
  const dir = a.contextDir;
  const u0 = await a.read('unique');
  const b = await buildCase(env, { contextDir: dir, dockerfile: df });
  assert.is(await b.read('unique'), u0);
  assert.is(stepsCached(b).cached, stepsCached(b).steps, 'every step is a cache hit');
  await writeFile(join(dir, 'bar'), 'b2');
  const c = await buildCase(env, { contextDir: dir, dockerfile: df, opts: { explain: true } });
  assert.is(await c.read('unique'), u0, 'the RUN before COPY bar is still a hit');
  assert.ok(c.log.includes('file changed: bar'), c.log);
  await writeFile(join(dir, 'foo2'), 'f2-changed');
  const d = await buildCase(env, { contextDir: dir, dockerfile: df, opts: { explain: true } });
  const u1 = await d.read('unique');
  assert.is.not(u1, u0);
  assert.ok(d.log.includes('file changed: foo2'), d.log);
  await rename(join(dir, 'foo1'), join(dir, 'foo3'));
  const e = await buildCase(env, { contextDir: dir, dockerfile: df });
  assert.is.not(await e.read('unique'), u1, 'a renamed match is a miss');
  // Renaming file1 → file2 under a wildcard must miss, so `ls /files/file1` fails.
  const wdir = join(env.work, 'wildcard-rename');
  await writeContext(wdir, { file1: 'x' });
  const wdf = `FROM busybox\nCOPY file* /files/\nRUN ls /files/file1\n`;
  await buildCase(env, { contextDir: wdir, dockerfile: wdf });
  await rename(join(wdir, 'file1'), join(wdir, 'file2'));
  await buildFails(env, { contextDir: wdir, dockerfile: wdf }, 'did not complete successfully');
  // A Dockerfile edit that does not touch a stage leaves that stage's steps as hits.
  const f = await buildCase(env, { contextDir: dir, dockerfile: df.replace('COPY --from=base unique /', 'COPY --from=base unique /other') });
  assert.is(stepsCached(f).cached, 3, 'the three steps of base are hits');
  // A symlink named as the source is followed: a change behind it is a miss.
  const ldir = join(env.work, 'symlink-cache');
  await writeContext(ldir, { 'foo/def': 'one', asymlink: { link: 'foo/' } });
  const ldf = `FROM busybox\nCOPY asymlink /x/\nRUN head -c 100 /dev/urandom | sha256sum > /unique\n`;
  const l1 = await buildCase(env, { contextDir: ldir, dockerfile: ldf });
  await writeFile(join(ldir, 'foo/def'), 'two');
  const l2 = await buildCase(env, { contextDir: ldir, dockerfile: ldf });
  assert.is.not(await l2.read('unique'), await l1.read('unique'));
  assert.is(await l2.read('x/def'), 'two');
  // Touching a Dockerfile that .dockerignore lists is a hit for ADD . /tmp/.
  const idir = join(env.work, 'ignored-df');
  await writeContext(idir, { '.dockerignore': 'Dockerfile\n', keep: 'k' });
  const idf = `FROM busybox\nADD . /tmp/\nRUN head -c 100 /dev/urandom | sha256sum > /unique\n`;
  const i1 = await buildCase(env, { contextDir: idir, dockerfile: idf });
  const i2 = await buildCase(env, { contextDir: idir, dockerfile: idf + '# touched\n' });
  assert.is(await i2.read('unique'), await i1.read('unique'));
  assert.not.ok(await i2.exists('tmp/Dockerfile'));
});

t('E2E-62 --no-cache, --no-cache-filter, cache, tmpfs and bind mounts', async () => {
  const df = `FROM busybox AS s0
RUN head -c 100 /dev/urandom | sha256sum > unique
FROM busybox AS s1
RUN head -c 100 /dev/urandom | sha256sum > unique2
FROM scratch
COPY --from=s0 unique /
COPY --from=s1 unique2 /
`;
  const a = await buildCase(env, { dockerfile: df });
  const dir = a.contextDir;
  const b = await buildCase(env, { contextDir: dir, dockerfile: df, opts: { noCache: true } });
  assert.is.not(await b.read('unique'), await a.read('unique'));
  assert.is.not(await b.read('unique2'), await a.read('unique2'));
  const c = await buildCase(env, { contextDir: dir, dockerfile: df, opts: { noCacheFilter: ['s1'] } });
  assert.is(await c.read('unique'), await b.read('unique'));
  assert.is.not(await c.read('unique2'), await b.read('unique2'));

  const m = await buildCase(env, {
    dockerfile: `FROM busybox
RUN --mount=type=cache,target=/c touch /c/foo
RUN --mount=type=cache,target=/c [ -f /c/foo ]
RUN --mount=type=cache,target=/mycache,uid=1001,gid=1002,mode=0751 [ "$(stat -c '%u %g %a' /mycache)" = "1001 1002 751" ]
RUN --mount=type=tmpfs,target=/t touch /t/x
RUN [ ! -e /t/x ]
`,
  });
  assert.not.ok(await m.exists('c/foo'), 'nothing from a cache mount in the image');
  assert.not.ok(await m.exists('t/x'));
  await buildFails(env, { dockerfile: `FROM busybox\nRUN --mount=type=cache,target=/c touch /c/foo\nRUN --mount=type=cache,target=/c2 [ -f /c2/foo ]\n` }, 'did not complete successfully');
  await buildCase(env, {
    dockerfile: `FROM busybox AS src
RUN mkdir /out && touch /out/foo
FROM busybox
RUN --mount=type=bind,from=src,source=out,target=/out,rw touch /out/bar && [ -f /out/foo ]
COPY --from=src /out /check
RUN [ -f /check/foo ] && [ ! -e /check/bar ]
`,
  });
});

t.run();
void rm;
void symlink;
