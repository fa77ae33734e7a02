/**
 * `kiln build` through the real CLI: outputs (docker/oci/tar/local/stdout),
 * media types and compression, annotations, errors with the Dockerfile excerpt,
 * --explain, progress modes, stdin Dockerfiles, parallel and pruned stages,
 * and the features kiln refuses rather than ignores. Local registry + busybox
 * fixture; every image is validated like the e2e cases.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startDockerd } from '../helpers/dockerd.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';
import { kilnBin } from '../helpers/repo.js';
import { validateImage } from './e2e-harness.js';

const run = promisify(execFile);
const t = suite('build-cli');
let reg: TestRegistry;
let bb: string;
let work: string;
let root: string;
let n = 0;

t.before(async () => {
  reg = await startRegistry();
  bb = await pushBusybox(reg);
  work = await mkdtemp(join(tmpdir(), 'kiln-build-cli-'));
  root = join(work, 'root');
});
t.after(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Ran {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Run kiln with a timeout; never throws for a non-zero exit. */
function kiln(args: string[], opts: { stdin?: string; cwd?: string; timeoutMs?: number; root?: string } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [kilnBin, ...args], { cwd: opts.cwd ?? work, env: { ...process.env, KILN_ROOT: opts.root ?? root }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

async function ctx(dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = join(work, `ctx-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), dockerfile.replaceAll('BUSYBOX', bb));
  for (const [k, v] of Object.entries(files)) await writeFile(join(dir, k), v);
  return dir;
}

const ok = (r: Ran) => assert.is(r.code, 0, r.stderr);

t('a failing RUN: BuildKit wording, the Dockerfile excerpt with >>>, the last output', async () => {
  const dir = await ctx('FROM BUSYBOX\nRUN echo fine\nRUN echo broken-output; exit 3\nRUN echo never\n');
  const r = await kiln(['build', '--progress', 'plain', dir]);
  assert.is(r.code, 1);
  assert.ok(r.stderr.includes('process "/bin/sh -c echo broken-output; exit 3" did not complete successfully: exit code: 3'), r.stderr);
  assert.ok(/\|\s*>>> RUN echo broken-output; exit 3/.test(r.stderr), r.stderr);
  assert.ok(r.stderr.includes('broken-output'));
  assert.not.ok(r.stderr.includes('#4 [0 3/3]'), 'the step after the failure does not start');
});

t('unknown flag and target errors are clear', async () => {
  const r = await kiln(['build', '--tagg', 'x', '.']);
  assert.is(r.code, 2);
  assert.ok(r.stderr.includes('Unknown flag "--tagg"') && r.stderr.includes('did you mean "--tag"'), r.stderr);
  const dir = await ctx('FROM scratch AS one\nENV A=1\n');
  const t2 = await kiln(['build', '--target', 'two', dir]);
  assert.ok(t2.stderr.includes('target stage "two" could not be found'), t2.stderr);
});

t('-o type=docker: a docker-load-able archive (loaded when a docker engine is available)', async () => {
  const dir = await ctx('FROM BUSYBOX\nRUN echo -n docker > /marker\nCMD ["cat","/marker"]\n');
  const out = join(work, 'img-docker.tar');
  ok(await kiln(['build', '-t', 'kiln-test/docker-out:1', '-o', `type=docker,dest=${out}`, dir]));
  const x = join(work, 'docker-x');
  await mkdir(x);
  await run('tar', ['-xf', out, '-C', x]);
  const manifest = JSON.parse(await readFile(join(x, 'manifest.json'), 'utf8'));
  assert.is(manifest.length, 1);
  assert.equal(manifest[0].RepoTags, ['kiln-test/docker-out:1']);
  const index = JSON.parse(await readFile(join(x, 'index.json'), 'utf8'));
  const mdigest = index.manifests[0].digest as string;
  await validateImage(x, mdigest as never);
  for (const l of manifest[0].Layers as string[]) await readFile(join(x, l));
  const d = await startDockerd();
  if (!d.ok) {
    console.log(`  (docker load not run: ${d.reason}; archive structure validated instead)`);
    return;
  }
  try {
    await d.docker(['load', '-i', out]);
    const res = await d.docker(['run', '--rm', '--network', 'none', 'kiln-test/docker-out:1']);
    assert.is(res.stdout, 'docker');
  } finally {
    await d.stop();
  }
});

t('-o type=tar (file and stdout) and type=local', async () => {
  const dir = await ctx('FROM scratch\nCOPY a /in/a\n', { a: 'A' });
  const f = join(work, 'fs.tar');
  ok(await kiln(['build', '-o', `type=tar,dest=${f}`, dir]));
  const list = (await run('tar', ['-tf', f])).stdout;
  assert.ok(list.includes('./in/a'), list);
  const s = await kiln(['build', '--progress', 'quiet', '-o', '-', dir]);
  ok(s);
  const listed = await new Promise<string>((resolve, reject) => {
    const c = execFile('tar', ['-tf', '-'], (e, o) => (e ? reject(e) : resolve(o)));
    c.stdin!.end(s.stdout);
  });
  assert.ok(listed.includes('./in/a'), 'a tar of the filesystem on stdout');
  const l = join(work, 'local-out');
  ok(await kiln(['build', '-o', `type=local,dest=${l}`, dir]));
  assert.is(await readFile(join(l, 'in/a'), 'utf8'), 'A');
});

t('--oci-mediatypes=false, --compression zstd, --annotation, --label', async () => {
  const dir = await ctx('FROM BUSYBOX\nRUN echo x > /x\n');
  const meta = join(work, 'meta-docker.json');
  ok(await kiln(['build', '--oci-mediatypes=false', '--metadata-file', meta, '-t', `${reg.host}/schema2:1`, '--push', dir]));
  const m1 = JSON.parse(await readFile(meta, 'utf8'));
  assert.is(m1['containerimage.descriptor'].mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  const { manifest } = await validateImage(root, m1['containerimage.digest']);
  assert.ok(manifest.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
  assert.is(manifest.config.mediaType, 'application/vnd.docker.container.image.v1+json');
  // skopeo's oci: transport lists only OCI manifests, so read the pushed copy.
  const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/schema2:1`])).stdout);
  assert.is(raw.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');

  const meta2 = join(work, 'meta-zstd.json');
  ok(await kiln(['build', '--compression', 'zstd', '--annotation', 'org.example.k=v', '--label', 'team=kiln', '--metadata-file', meta2, '-t', 'kiln-test/zstd', dir]));
  const m2 = JSON.parse(await readFile(meta2, 'utf8'));
  const mb = JSON.parse(await readFile(join(root, 'blobs', 'sha256', m2['containerimage.digest'].slice(7)), 'utf8'));
  assert.is(mb.layers.at(-1).mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  assert.equal(mb.annotations, { 'org.example.k': 'v' });
  const layer = join(root, 'blobs', 'sha256', mb.layers.at(-1).digest.slice(7));
  const plain = (await run('zstd', ['-dc', layer], { encoding: 'buffer', maxBuffer: 64 << 20 })).stdout as unknown as Buffer;
  const cfg = JSON.parse(await readFile(join(root, 'blobs', 'sha256', mb.config.digest.slice(7)), 'utf8'));
  const { createHash } = await import('node:crypto');
  assert.is(`sha256:${createHash('sha256').update(plain).digest('hex')}`, cfg.rootfs.diff_ids.at(-1), 'zstd layer diffId');
  assert.is(cfg.config.Labels.team, 'kiln');
  const bad = await kiln(['build', '--compression', 'zstd', '-o', `type=docker,dest=${join(work, 'z.tar')}`, dir]);
  assert.is(bad.code, 1);
  assert.ok(bad.stderr.includes('gzip'), bad.stderr);
});

t('COPY --from into a new directory shares the source stage\'s files, and changing the copy leaves the source alone', async () => {
  // A one-layer stage is viewed as its committed directory; /new is in no layer of the busybox
  // stage, so the COPY writes without a mount and hard-links the unchanged files.
  const dir = await ctx(
    [
      'FROM scratch AS src',
      'COPY data.txt /data.txt',
      'FROM BUSYBOX AS changer',
      'COPY --from=src /data.txt /new/data.txt',
      'RUN echo more >> /new/data.txt && chmod 600 /new/data.txt',
      'FROM BUSYBOX',
      'COPY --from=changer /new/data.txt /changed.txt',
      'COPY --from=src /data.txt /again/data.txt',
      'RUN cat /again/data.txt /changed.txt',
      '',
    ].join('\n'),
    { 'data.txt': 'original\n' },
  );
  const sroot = join(work, 'root-link');
  const out = join(work, 'link-out');
  const r = await kiln(['build', '--progress', 'plain', '-o', `type=local,dest=${out}`, dir], { root: sroot });
  ok(r);
  assert.match(r.stderr, /original\n.*original\n.*more\n/);
  assert.is(await readFile(join(out, 'again/data.txt'), 'utf8'), 'original\n');
  assert.is(await readFile(join(out, 'changed.txt'), 'utf8'), 'original\nmore\n');
  const found = (await run('find', [join(sroot, 'snapshots'), '-name', 'data.txt', '-printf', '%n %i %P\n'])).stdout.trim().split('\n');
  assert.ok(found.some((l) => l.startsWith('3 ')), `the source file and its two unchanged copies are one inode: ${found.join('; ')}`);
});

t('--explain names the changed file and arg; rawjson progress is JSON lines', async () => {
  const dir = await ctx('FROM BUSYBOX\nARG V=1\nCOPY f /f\nRUN echo $V > /v\n', { f: 'one' });
  ok(await kiln(['build', '--explain', '--progress', 'plain', dir]));
  await writeFile(join(dir, 'f'), 'two');
  const r = await kiln(['build', '--explain', '--progress', 'plain', '--build-arg', 'V=2', dir]);
  ok(r);
  assert.ok(/MISS .*COPY f \/f\n\s+file changed: f/.test(r.stderr), r.stderr);
  assert.ok(r.stderr.includes('arg V changed: "1" → "2"'), r.stderr);
  const j = await kiln(['build', '--progress', 'rawjson', '--explain', dir]);
  ok(j);
  const events = j.stderr.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.ok(events.some((e) => e.type === 'explain' && e.hit === true));
  assert.ok(events.some((e) => e.type === 'step-done' && e.cached === true));
});

t('a Dockerfile on stdin with an empty context; --build-arg NAME from the environment', async () => {
  const r = await kiln(['build', '--progress', 'plain', '--build-arg', 'HOME', '-o', `type=local,dest=${join(work, 'stdin-out')}`, '-'], {
    stdin: `FROM ${bb}\nARG HOME\nRUN echo -n "$HOME" > /home-arg\n`,
  });
  ok(r);
  assert.is(await readFile(join(work, 'stdin-out', 'home-arg'), 'utf8'), process.env.HOME ?? '');
});

t('a context tar on stdin (plain and gzip)', async () => {
  const dir = await ctx('FROM scratch\nCOPY payload /payload\n', { payload: 'from-tar' });
  const tar = (await run('tar', ['-C', dir, '-cf', '-', '.'], { encoding: 'buffer' })).stdout as unknown as Buffer;
  const { gzipSync } = await import('node:zlib');
  for (const [name, data] of [['plain', tar], ['gzip', gzipSync(tar)]] as const) {
    const out = join(work, `stdin-tar-${name}`);
    const r = await new Promise<Ran>((resolve, reject) => {
      const child = spawn(process.execPath, [kilnBin, 'build', '-o', `type=local,dest=${out}`, '-'], { cwd: work, env: { ...process.env, KILN_ROOT: root } });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout: Buffer.alloc(0), stderr: err });
      });
      child.stdin.end(data);
    });
    ok(r);
    assert.is(await readFile(join(out, 'payload'), 'utf8'), 'from-tar');
  }
});

t('unused stages are never pulled; independent stages run in parallel (--jobs 2)', async () => {
  const dir = await ctx(`FROM 127.0.0.1:1/never-pulled:1 AS unused
RUN exit 1
FROM BUSYBOX AS a
RUN sleep 2 && echo a > /a
FROM BUSYBOX AS b
RUN sleep 2 && echo b > /b
FROM BUSYBOX AS c
RUN sleep 2 && echo c > /c
FROM BUSYBOX AS d
RUN sleep 2 && echo d > /d
FROM scratch
COPY --from=a /a /
COPY --from=b /b /
COPY --from=c /c /
COPY --from=d /d /
`);
  const r = await kiln(['build', '--progress', 'rawjson', '--jobs', '2', '-o', `type=local,dest=${join(work, 'par')}`, dir]);
  ok(r);
  assert.not.ok(r.stderr.includes('never-pulled'), 'the unused stage base is never resolved');
  const events = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; id: string; name?: string });
  assert.is(events.filter((e) => e.type === 'step-start' && e.name?.includes('load metadata')).length, 1, 'one base resolution shared by four stages');
  // Replay the RUN steps' start/done events: two run at once, never more (--jobs 2).
  const runs = new Set(events.filter((e) => e.type === 'step-start' && e.name?.includes('RUN sleep')).map((e) => e.id));
  assert.is(runs.size, 4);
  let live = 0;
  let peak = 0;
  for (const e of events) {
    if (!runs.has(e.id)) continue;
    if (e.type === 'step-start') peak = Math.max(peak, ++live);
    if (e.type === 'step-done') live--;
  }
  assert.is(peak, 2, 'independent stages overlap, bounded by --jobs');
  for (const f of ['a', 'b', 'c', 'd']) assert.is(await readFile(join(work, 'par', f), 'utf8'), `${f}\n`);
});

t("a stage's base image is pulled while the stages it copies from build", async () => {
  const other = await pushBusybox(reg, { repo: 'busybox-other' });
  const dir = await ctx(`FROM BUSYBOX AS slow
RUN sleep 1 && echo s > /s
FROM ${other}
COPY --from=slow /s /s
`);
  const r = await kiln(['build', '--progress', 'rawjson', '--no-cache', '-o', `type=local,dest=${join(work, 'prefetch')}`, dir]);
  ok(r);
  const events = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; id: string; name?: string });
  const at = (type: string, pred: (e: { id: string; name?: string }) => boolean) => events.findIndex((e) => e.type === type && pred(e));
  const finalPullDone = at('step-done', (e) => e.id === '1/from');
  const slowRunDone = at('step-done', (e) => e.id === 'slow/1');
  assert.ok(finalPullDone !== -1 && slowRunDone !== -1, r.stderr);
  assert.ok(finalPullDone < slowRunDone, "the final stage's base was resolved before the stage it copies from finished");
  assert.is(await readFile(join(work, 'prefetch', 's'), 'utf8'), 's\n');
});

t('ADD of an http URL with --checksum; RUN --mount=type=secret from --secret', async () => {
  const { createServer } = await import('node:http');
  const body = 'downloaded-content\n';
  const srv = createServer((req, res) => {
    if (req.url === '/files/data.txt') {
      res.writeHead(200, { 'content-type': 'text/plain', 'last-modified': 'Tue, 01 Oct 2024 10:00:00 GMT' });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    const { createHash } = await import('node:crypto');
    const sum = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const url = `http://127.0.0.1:${port}/files/data.txt`;
    const out = join(work, 'add-url');
    ok(await kiln(['build', '-o', `type=local,dest=${out}`, await ctx(`FROM scratch\nADD --checksum=${sum} ${url} /dl/\n`)]));
    assert.is(await readFile(join(out, 'dl/data.txt'), 'utf8'), body);
    const wrong = await kiln(['build', await ctx(`FROM scratch\nADD --checksum=sha256:${'0'.repeat(64)} ${url} /dl/\n`)]);
    assert.is(wrong.code, 1);
    assert.ok(wrong.stderr.includes('digest mismatch'), wrong.stderr);
    const missing = await kiln(['build', await ctx(`FROM scratch\nADD http://127.0.0.1:${port}/nope /x\n`)]);
    assert.ok(missing.stderr.includes('404'), missing.stderr);
  } finally {
    srv.close();
  }
  const secretFile = join(work, 'token.txt');
  await writeFile(secretFile, 's3cret');
  const sout = join(work, 'secret-out');
  const dir = await ctx('FROM BUSYBOX\nRUN --mount=type=secret,id=tok [ "$(cat /run/secrets/tok)" = s3cret ] && echo ok > /used\n');
  const r = await kiln(['build', '--secret', `id=tok,src=${secretFile}`, '-o', `type=local,dest=${sout}`, dir]);
  ok(r);
  assert.is(await readFile(join(sout, 'used'), 'utf8'), 'ok\n');
  assert.not.ok(await readFile(join(sout, 'run/secrets/tok'), 'utf8').then(() => true, () => false), 'the secret is not in the image');
  // env= puts the secret in the step's environment only.
  const envOut = join(work, 'secret-env-out');
  ok(await kiln(['build', '--secret', `id=tok,src=${secretFile}`, '-o', `type=local,dest=${envOut}`, await ctx('FROM BUSYBOX\nRUN --mount=type=secret,id=tok,env=TOKEN [ "$TOKEN" = s3cret ] && [ ! -e /run/secrets/tok ] && echo ok > /used\n')]));
  assert.is(await readFile(join(envOut, 'used'), 'utf8'), 'ok\n');
  // --ssh default forwards $SSH_AUTH_SOCK into RUN --mount=type=ssh.
  const agentSock = join(work, 'agent.sock');
  const agent = await run('ssh-agent', ['-a', agentSock]);
  const agentPid = /SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1];
  try {
    const sshOut = join(work, 'ssh-out');
    const rs = await kiln(['build', '--ssh', `default=${agentSock}`, '-o', `type=local,dest=${sshOut}`, await ctx('FROM BUSYBOX\nRUN --mount=type=ssh [ -S "$SSH_AUTH_SOCK" ] && echo -n "$SSH_AUTH_SOCK" > /sock\n')]);
    ok(rs);
    assert.is(await readFile(join(sshOut, 'sock'), 'utf8'), '/run/buildkit/ssh_agent.0');
  } finally {
    if (agentPid) process.kill(Number(agentPid));
  }
  const miss = await kiln(['build', await ctx('FROM BUSYBOX\nRUN --mount=type=secret,id=absent,required=true true\n')]);
  assert.ok(miss.stderr.includes('secret absent: not found'), miss.stderr);
});

t('--pull re-resolves a moved tag; --explain names the base digest change', async () => {
  const base = `${reg.host}/movable:1`;
  // Pushed from a separate store, so this test's store keeps its own (old) tag.
  const mk = async (content: string) => {
    const d = await ctx(`FROM BUSYBOX\nRUN echo -n ${content} > /version\n`);
    ok(await kiln(['build', '-t', base, '--push', d], { root: join(work, 'pusher-root') }));
  };
  await mk('v1');
  const dir = await ctx(`FROM ${base}\nRUN cat /version > /seen\n`);
  const out1 = join(work, 'pull-1');
  ok(await kiln(['build', '-o', `type=local,dest=${out1}`, dir]));
  assert.is(await readFile(join(out1, 'seen'), 'utf8'), 'v1');
  await mk('v2');
  const out2 = join(work, 'pull-2');
  ok(await kiln(['build', '-o', `type=local,dest=${out2}`, dir]));
  assert.is(await readFile(join(out2, 'seen'), 'utf8'), 'v1', 'without --pull the local copy of the tag is used');
  const r = await kiln(['build', '--pull', '--explain', '--progress', 'plain', '-o', `type=local,dest=${join(work, 'pull-3')}`, dir]);
  ok(r);
  assert.is(await readFile(join(work, 'pull-3', 'seen'), 'utf8'), 'v2');
  assert.ok(r.stderr.includes('base image changed'), r.stderr);
});

t('two kiln processes building at once into one fresh store both succeed', async () => {
  const dir = await ctx('FROM BUSYBOX\nCOPY a /a\nRUN echo x > /b\nCOPY a /c\n', { a: 'shared' });
  const fresh = join(work, 'shared-root');
  const [a, b] = await Promise.all([kiln(['build', '-q', dir], { root: fresh }), kiln(['build', '-q', dir], { root: fresh })]);
  ok(a);
  ok(b);
  for (const r of [a, b]) {
    const id = r.stdout.toString().trim();
    assert.ok(/^sha256:[a-f0-9]{64}$/.test(id), id);
  }
});

t('ADD of a git repository: ref and subdir, the commit in the cache key, --keep-git-dir', async () => {
  const repos = join(work, 'git-repos');
  const repo = join(repos, 'proj.git');
  await mkdir(repo, { recursive: true });
  const g = (args: string[], cwd = repo) => run('git', ['-c', 'user.name=t', '-c', 'user.email=t@e', ...args], { cwd });
  await g(['init', '-q', '-b', 'main']);
  await mkdir(join(repo, 'sub'));
  await writeFile(join(repo, 'sub', 'file.txt'), 'v1');
  await writeFile(join(repo, 'root.txt'), 'root');
  await g(['add', '.']);
  await g(['commit', '-q', '-m', 'one']);
  await g(['tag', 'v1']);
  const { freePort } = await import('../helpers/registry.js');
  const port = await freePort();
  const daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${repos}`, '--listen=127.0.0.1', `--port=${port}`, repos], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 50; i++) {
      if (await run('git', ['ls-remote', `git://127.0.0.1:${port}/proj.git`]).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = `git://127.0.0.1:${port}/proj.git`;
    const dir = await ctx(`FROM scratch\nADD ${url}#v1:sub /app/\nADD ${url} /whole/\nADD --keep-git-dir=true ${url}#main /withgit/\n`);
    const out = join(work, 'git-out');
    ok(await kiln(['build', '-o', `type=local,dest=${out}`, dir]));
    assert.is(await readFile(join(out, 'app/file.txt'), 'utf8'), 'v1');
    assert.is(await readFile(join(out, 'whole/root.txt'), 'utf8'), 'root');
    assert.not.ok(await readFile(join(out, 'whole/.git/HEAD'), 'utf8').then(() => true, () => false), '.git is dropped by default');
    assert.ok(await readFile(join(out, 'withgit/.git/HEAD'), 'utf8').then(() => true, () => false), '--keep-git-dir keeps it');
    // A new commit on main: the main-tracking ADD misses, the tag-pinned one hits.
    await writeFile(join(repo, 'root.txt'), 'root2');
    await g(['commit', '-q', '-am', 'two']);
    const r = await kiln(['build', '--explain', '--progress', 'plain', '-o', `type=local,dest=${join(work, 'git-out2')}`, dir]);
    ok(r);
    assert.ok(/HIT .*ADD git:\/\/.*#v1:sub/.test(r.stderr), r.stderr);
    assert.is(await readFile(join(work, 'git-out2', 'whole/root.txt'), 'utf8'), 'root2');
    const bad = await kiln(['build', await ctx(`FROM scratch\nADD ${url}#nosuchref /x/\n`)]);
    assert.ok(bad.stderr.includes('Cannot fetch git source'), bad.stderr);
  } finally {
    daemon.kill();
  }
});

t('RUN --network=none sees only loopback; the default is the host network', async () => {
  const dir = await ctx('FROM BUSYBOX\nRUN --network=none grep -c : /proc/net/dev > /none\nRUN grep -c : /proc/net/dev > /host\n');
  const out = join(work, 'net-out');
  ok(await kiln(['build', '-o', `type=local,dest=${out}`, dir]));
  assert.is((await readFile(join(out, 'none'), 'utf8')).trim(), '1', 'only lo');
  const hostIfaces = (await readFile('/proc/net/dev', 'utf8')).split('\n').filter((l) => l.includes(':')).length;
  assert.is(Number((await readFile(join(out, 'host'), 'utf8')).trim()), hostIfaces);
});

t('--build-context name=oci-layout://PATH as a base and as a COPY --from source', async () => {
  const { ensureBusyboxLayout } = await import('../helpers/fixtures.js');
  const layout = await ensureBusyboxLayout();
  const dir = await ctx('FROM bb\nRUN echo -n from-layout > /marker\nFROM scratch\nCOPY --from=bb /bin/busybox /bin/busybox\nCOPY --from=0 /marker /\n');
  const out = join(work, 'layout-out');
  ok(await kiln(['build', '--build-context', `bb=oci-layout://${layout}:latest`, '-o', `type=local,dest=${out}`, dir]));
  assert.is(await readFile(join(out, 'marker'), 'utf8'), 'from-layout');
  assert.is((await run(join(out, 'bin', 'busybox'), ['echo', 'ok'])).stdout, 'ok\n');
  const bad = await kiln(['build', '--build-context', `bb=oci-layout://${layout}:nosuchtag`, dir]);
  assert.ok(bad.stderr.includes('Cannot find'), bad.stderr);
});

t('refused features fail with a clear message instead of being ignored', async () => {
  const kgd = await kiln(['build', await ctx('FROM scratch\nADD --keep-git-dir=true a /x/\n', { a: '1' })]);
  assert.ok(kgd.stderr.includes('--keep-git-dir can only be used with git sources'), kgd.stderr);
  const parents = await kiln(['build', await ctx('FROM scratch\nCOPY --parents ./a/./b /x/\n', { a: '1' })]);
  assert.ok(parents.stderr.includes('pivot in a source is not supported'), parents.stderr);
  const ssh = await kiln(['build', '--ssh', 'default=/root/.ssh/id_ed25519', await ctx('FROM scratch\nENV A=1\n')]);
  assert.ok(ssh.stderr.includes('forwards agent sockets, not key files'), ssh.stderr);
  const plat = await kiln(['build', '--platform', 'linux/amd64,linux/arm64', await ctx('FROM scratch\nENV A=1\n')]);
  assert.ok(plat.stderr.includes('several platforms'), plat.stderr);
  const mount = await kiln(['build', await ctx('FROM BUSYBOX\nRUN --mount=type=ssh,required=true true\n')]);
  assert.ok(mount.stderr.includes('no SSH key "default" forwarded'), mount.stderr);
});

t.run();
