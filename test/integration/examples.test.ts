/**
 * The examples/ folder builds, through the real `kiln build` CLI, against a
 * local registry holding the busybox fixture. The Go examples use a toolchain
 * image made by examples/go-toolchain from the host's Debian golang-go files
 * (CI installs golang-go); the binaries they produce are run on the host.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pushBusybox, skopeoInspect } from '../helpers/fixtures.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';
import { kilnBin, repoRoot } from '../helpers/repo.js';
import { validateImage } from './e2e-harness.js';

const run = promisify(execFile);
const t = suite('examples');
let reg: TestRegistry;
let busybox: string;
let work: string;
let root: string;

t.before(async () => {
  reg = await startRegistry();
  busybox = await pushBusybox(reg);
  work = await mkdtemp(join(tmpdir(), 'kiln-examples-'));
  root = join(work, 'root');
});
t.after(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function kiln(args: string[], timeoutMs = 300_000): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(process.execPath, [kilnBin, ...args], { env: { ...process.env, KILN_ROOT: root }, timeout: timeoutMs, maxBuffer: 64 << 20, cwd: repoRoot });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kiln ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

const ex = (name: string) => join(repoRoot, 'examples', name);

t('hello: build, push, iidfile and metadata-file', async () => {
  const ref = `${reg.host}/hello:1`;
  const iid = join(work, 'iid');
  const meta = join(work, 'meta.json');
  await kiln(['build', '--progress', 'plain', '--build-arg', `BASE=${busybox}`, '-t', ref, '--push', '--iidfile', iid, '--metadata-file', meta, ex('hello')]);
  const m = JSON.parse(await readFile(meta, 'utf8'));
  assert.ok(String(m['containerimage.digest']).startsWith('sha256:'));
  assert.is(m['containerimage.descriptor'].digest, m['containerimage.digest']);
  assert.is(m['image.name'], ref);
  assert.is(await readFile(iid, 'utf8'), m['containerimage.config.digest']);
  await validateImage(root, m['containerimage.digest']);
  const remote = await skopeoInspect(ref);
  assert.is(remote.Digest, m['containerimage.digest'], 'the registry serves the same manifest');
  const cfg = await skopeoInspect(ref, 'config');
  assert.equal(cfg.config.Cmd, ['hello']);
});

t('copy-from-image: COPY --from an image, exported as an OCI archive', async () => {
  const out = join(work, 'from-image.tar');
  await kiln(['build', '--build-context', `busybox=docker-image://${busybox}`, '-o', `type=oci,dest=${out}`, ex('copy-from-image')]);
  const info = JSON.parse((await run('skopeo', ['inspect', `oci-archive:${out}`])).stdout);
  assert.is(info.Layers.length, 2);
  const dir = join(work, 'from-image-fs');
  await kiln(['build', '--build-context', `busybox=docker-image://${busybox}`, '-o', `type=local,dest=${dir}`, ex('copy-from-image')]);
  const { stdout } = await run(join(dir, 'bin', 'busybox'), ['echo', 'ok']);
  assert.is(stdout, 'ok\n');
  assert.ok((await readFile(join(dir, 'etc', 'passwd'), 'utf8')).startsWith('root:'));
});

const goAvailable = existsSync('/usr/lib/go-1.19/bin/go') && existsSync('/usr/share/go-1.19/src');

t('go: toolchain image from host files, go-hello into scratch, --target builder, multi-project', async () => {
  assert.ok(goAvailable, 'golang-go (Go 1.19, Debian 12) must be installed: .ci/run installs it');
  const golang = `${reg.host}/golang:1.19`;
  await kiln([
    'build', '--build-context', 'goroot=/usr/lib/go-1.19', '--build-context', 'goshare=/usr/share/go-1.19',
    '--build-context', 'hostlib=/lib/x86_64-linux-gnu', '--build-arg', `BASE=${busybox}`, '-t', golang, '--push', ex('go-toolchain'),
  ]);
  // go-hello: the final image holds only the static binary.
  const dir = join(work, 'go-hello-fs');
  await kiln(['build', '--build-arg', `GOLANG=${golang}`, '-t', `${reg.host}/go-hello:1`, '-o', `type=local,dest=${dir}`, ex('go-hello')], 600_000);
  const { stdout } = await run(join(dir, 'hello'), []);
  assert.ok(stdout.startsWith('hello from Go go1.19'), stdout);
  // --target builder stops at the toolchain stage (its self-test output is there).
  const bdir = join(work, 'go-builder-fs');
  await kiln(['build', '--build-arg', `GOLANG=${golang}`, '--target', 'builder', '-o', `type=local,dest=${bdir}`, ex('go-hello')], 600_000);
  assert.ok((await readFile(join(bdir, 'out', 'selftest.txt'), 'utf8')).startsWith('hello from Go'));
  assert.ok(existsSync(join(bdir, 'usr', 'local', 'go', 'bin', 'go')));
  // multi-project: two programs from one toolchain stage, in busybox.
  const mdir = join(work, 'multi-fs');
  await kiln(['build', '--jobs', '2', '--build-arg', `GOLANG=${golang}`, '--build-arg', `BASE=${busybox}`, '-o', `type=local,dest=${mdir}`, ex('multi-project')], 600_000);
  assert.is((await run(join(mdir, 'usr/local/bin/greet'), ['kiln'])).stdout, 'hello, kiln\n');
  const counted = await new Promise<string>((resolve, reject) => {
    const c = execFile(join(mdir, 'usr/local/bin/count'), (err, out) => (err ? reject(err) : resolve(out)));
    c.stdin!.end('a\nb\nc\n');
  });
  assert.is(counted, '3\n');
  assert.ok(existsSync(join(mdir, 'bin', 'busybox')));
});

t.run();
