/**
 * mounts=true: RUN --mount=type=cache contents travel with --cache-to /
 * --cache-from (type=local and type=registry) to a fresh $KILN_ROOT.
 * Real registry, busybox fixture, real sandbox.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { BuildEvent } from '../../src/build/types.js';
import { CACHE_MOUNT_ID_ANNOTATION } from '../../src/build/cache-manifest.js';
import { build } from '../../src/export/build-and-export.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const test = suite('cache-mounts');

let reg: TestRegistry;
let work: string;
let base: string;

const WRITER = (b: string) => `FROM ${b}
RUN --mount=type=cache,target=/cache,id=c1 sh -c 'echo data > /cache/f'
`;
const READER = (b: string) => `FROM ${b}
RUN --mount=type=cache,target=/cache,id=c1 sh -c 'cat /cache/f > /out 2>/dev/null || echo missing > /out'
`;

/** Build `dockerfile` under a fresh or named $KILN_ROOT; returns the infos and the /out of the image (or undefined). */
async function kbuild(root: string, dockerfile: string, opts: { cacheTo?: string[]; cacheFrom?: string[]; noCache?: boolean } = {}): Promise<{ out: string | undefined; infos: string[] }> {
  const ctx = join(work, `ctx-${root}-${Math.random().toString(36).slice(2)}`);
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  const dest = join(ctx, 'rootfs');
  const events: BuildEvent[] = [];
  await build({ context: ctx, kilnRoot: join(work, root), outputs: [`type=local,dest=${dest}`], onEvent: (e) => events.push(e), ...opts });
  const out = await readFile(join(dest, 'out'), 'utf8').catch(() => undefined);
  return { out, infos: events.flatMap((e) => (e.type === 'info' ? [e.message] : [])) };
}

test.before(async () => {
  reg = await startRegistry();
  base = await pushBusybox(reg);
  work = await mkdtemp(join(tmpdir(), 'kiln-cache-mounts-'));
});

test.after(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true }).catch(() => undefined);
});

test('store A exports cache mount c1 (local and registry); fresh stores import it only with mounts=true', async () => {
  const local = join(work, 'local');
  const ref = `${reg.host}/app:cache`;
  const a = await kbuild('A', WRITER(base), { cacheTo: [`type=local,dest=${local},mode=max,mounts=true`, `type=registry,ref=${ref},mode=max,mounts=true`] });
  assert.ok(a.infos.some((m) => /exported cache to local directory .*1 cache mounts/.test(m)), a.infos.join('\n'));

  // The registry manifest lists the mount layer with its id.
  const { stdout } = await run('skopeo', ['--insecure-policy', 'inspect', '--tls-verify=false', '--raw', `docker://${ref}`], { timeout: 60_000 });
  const layers = (JSON.parse(stdout) as { layers: Array<{ annotations?: Record<string, string> }> }).layers;
  assert.equal(layers.filter((l) => l.annotations?.[CACHE_MOUNT_ID_ANNOTATION] === 'c1').length, 1);

  const b = await kbuild('B', READER(base), { cacheFrom: [`type=local,src=${local},mounts=true`] });
  assert.is(b.out, 'data\n');
  assert.ok(b.infos.some((m) => m === 'cache mount "c1": contents imported'), b.infos.join('\n'));

  const c = await kbuild('C', READER(base), { cacheFrom: [`type=registry,ref=${ref},mounts=true`] });
  assert.is(c.out, 'data\n');

  // --no-cache skips the instruction cache, not the imported cache mounts.
  const e = await kbuild('E', READER(base), { cacheFrom: [`type=local,src=${local},mounts=true`], noCache: true });
  assert.is(e.out, 'data\n');

  // Without mounts=true the mount starts empty.
  const d = await kbuild('D', READER(base), { cacheFrom: [`type=local,src=${local}`] });
  assert.is(d.out, 'missing\n');
});

test.run();
