/**
 * Build cache shared through a registry (issue 7): inline cache in pushed
 * images, the `--target builder` / `--cache-from` flow on two empty stores,
 * lazy blob import, and --explain after a one-file change on the second store.
 * Real registry (docker-registry), busybox fixture, real RUN sandbox.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openContentStore } from '../../src/content/oci-layout-store.js';
import { INLINE_CACHE_FIELD } from '../../src/build/cache-manifest.js';
import type { BuildEvent } from '../../src/build/types.js';
import { type BuildOptions, type BuildResult, build } from '../../src/export/build-and-export.js';
import type { Digest } from '../../src/oci/digest.js';
import { pushBusybox, skopeoInspect } from '../helpers/fixtures.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';

const run = promisify(execFile);

interface Env {
  reg: TestRegistry;
  busybox: string;
  work: string;
  ctx: string;
  repo: string;
}

const test = suite<{ env?: Env }>('cache-registry');
let env: Env;

const DOCKERFILE = (base: string) => `FROM ${base} AS builder
COPY src/ /src/
RUN echo builder-ran-1 && sleep 2 && mkdir -p /out && cat /src/* > /out/app && dd if=/dev/urandom of=/out/blob bs=1024 count=256 2>/dev/null
RUN echo builder-ran-2 && sha256sum /out/app > /out/app.sha

FROM ${base}
COPY --from=builder /out/app /app
COPY --from=builder /out/app.sha /app.sha
CMD ["/bin/cat", "/app"]
`;

interface Run {
  result: BuildResult;
  events: BuildEvent[];
  ms: number;
  logs: string;
}

async function kbuild(root: string, opts: Partial<BuildOptions> = {}): Promise<Run> {
  const events: BuildEvent[] = [];
  const t0 = performance.now();
  const result = await build({ context: env.ctx, kilnRoot: root, onEvent: (e) => events.push(e), ...opts });
  const ms = performance.now() - t0;
  const logs = events.flatMap((e) => (e.type === 'step-log' ? [e.data] : [])).join('');
  return { result, events, ms, logs };
}

/** The exact image config blob (skopeo's parsed --config drops unknown fields). */
async function rawConfig(ref: string): Promise<Record<string, any>> {
  const { stdout } = await run('skopeo', ['--insecure-policy', 'inspect', '--tls-verify=false', '--raw', '--config', `docker://${ref}`], { timeout: 60_000, maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as Record<string, any>;
}

function builderSteps(r: Run) {
  return r.events.filter((e): e is Extract<BuildEvent, { type: 'step-done' }> => e.type === 'step-done' && e.id.startsWith('builder/') && e.id !== 'builder/from');
}

test.before(async () => {
  const reg = await startRegistry();
  const busybox = await pushBusybox(reg);
  const work = await mkdtemp(join(tmpdir(), 'kiln-cache-reg-'));
  const ctx = join(work, 'ctx');
  await mkdir(join(ctx, 'src'), { recursive: true });
  await writeFile(join(ctx, 'src', 'a.txt'), 'alpha\n');
  await writeFile(join(ctx, 'src', 'b.txt'), 'beta\n');
  await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE(busybox));
  env = { reg, busybox, work, ctx, repo: `${reg.host}/app` };
});

test.after(async () => {
  await env?.reg.stop();
  if (env) await rm(env.work, { recursive: true, force: true }).catch(() => undefined);
});

let cold: Run;
const rootA = () => join(env.work, 'storeA');
const rootB = () => join(env.work, 'storeB');

test('cold build on an empty store runs every RUN', async () => {
  cold = await kbuild(rootA(), { tags: [`${env.repo}:cold`] });
  assert.match(cold.logs, /builder-ran-1/);
  assert.match(cold.logs, /builder-ran-2/);
  assert.is(cold.result.stats.cached, 0);
});

test('pushed images carry inline cache by default (--target builder as :builder, full image as :latest)', async () => {
  const b = await kbuild(rootA(), { target: 'builder', tags: [`${env.repo}:builder`], push: true });
  assert.equal(b.result.pushed, [`${env.repo}:builder`]);
  assert.is(b.result.stats.cached, b.result.stats.steps, 'builder reused from the local cache');
  const l = await kbuild(rootA(), { tags: [`${env.repo}:latest`], push: true });
  assert.equal(l.result.pushed, [`${env.repo}:latest`]);
  for (const tag of ['builder', 'latest']) {
    const cfg = await rawConfig(`${env.repo}:${tag}`);
    const doc = cfg[INLINE_CACHE_FIELD];
    assert.ok(doc, `:${tag} config has ${INLINE_CACHE_FIELD}`);
    assert.is(doc.version, 1);
    assert.ok(doc.records.length >= 2, `:${tag} carries its steps (${doc.records.length})`);
    assert.ok(doc.records.slice(1).every((r: { delta?: unknown }) => r.delta), `:${tag}: each later step is a config delta`);
    // Every blob an inline record names is a layer of the image itself.
    const summary = await skopeoInspect(`${env.repo}:${tag}`);
    for (const layer of doc.layers) assert.ok(summary.Layers.includes(layer.descriptor.digest), `${layer.descriptor.digest} is a layer of :${tag}`);
  }
  // Same layers and history as the cold build: only the config's cache field differs.
  assert.equal(l.result.layers.map((x) => x.digest), cold.result.layers.map((x) => x.digest));
  assert.is.not(l.result.imageId, cold.result.imageId);
});

test('second empty store: --cache-from :builder and :latest reuse the builder stage without running it, ≤ 0.35× cold time', async () => {
  const warm = await kbuild(rootB(), { cacheFrom: [`${env.repo}:builder`, `type=registry,ref=${env.repo}:latest`], tags: ['app:warm'] });
  const steps = builderSteps(warm);
  assert.ok(steps.length >= 3, `builder steps reported (${steps.length})`);
  for (const s of steps) assert.ok(s.cached, `${s.id} is a cache hit`);
  assert.not.match(warm.logs, /builder-ran/, 'no RUN executed');
  assert.is(warm.result.stats.cached, warm.result.stats.steps, `all steps hit (${warm.result.stats.cached}/${warm.result.stats.steps})`);
  // Identical image (same config bytes: history times come from the cache records).
  assert.is(warm.result.imageId, cold.result.imageId);
  assert.equal(warm.result.layers.map((x) => x.digest), cold.result.layers.map((x) => x.digest));
  // Lazy: the builder's RUN layer (not in the final image) was never fetched; the final image's layers were.
  const storeB = openContentStore(rootB());
  const builderImage = await skopeoInspect(`${env.repo}:builder`);
  const runLayers = (builderImage.Layers as string[]).filter((d) => !warm.result.layers.some((x) => x.digest === d));
  assert.ok(runLayers.length >= 1);
  for (const d of runLayers) assert.not.ok(await storeB.stat(d as Digest), `builder layer ${d} not fetched`);
  for (const l of warm.result.layers) assert.ok(await storeB.stat(l.digest), `final layer ${l.digest} present`);
  const summary = warm.events.find((e) => e.type === 'info' && e.message.startsWith('cache import: '));
  assert.ok(summary, 'import summary reported');
  assert.match((summary as { message: string }).message, new RegExp(`^cache import: ${warm.result.stats.steps} steps reused, \\d+ of \\d+ imported blobs fetched$`));
  const ratio = warm.ms / cold.ms;
  console.log(`  cold ${cold.ms.toFixed(0)} ms, --cache-from on an empty store ${warm.ms.toFixed(0)} ms, ratio ${ratio.toFixed(3)}`);
  assert.ok(ratio <= 0.35, `ratio ${ratio.toFixed(3)} ≤ 0.35`);
});

test('--explain on the second store names the one changed file', async () => {
  await writeFile(join(env.ctx, 'src', 'b.txt'), 'beta changed\n');
  try {
    const r = await kbuild(rootB(), { cacheFrom: [`${env.repo}:builder`, `${env.repo}:latest`], tags: ['app:changed'], explain: true });
    const ex = r.events.filter((e): e is Extract<BuildEvent, { type: 'explain' }> => e.type === 'explain');
    const copy = ex.find((e) => e.id === 'builder/1');
    assert.ok(copy, 'explain event for COPY src/');
    assert.is(copy!.hit, false);
    assert.is(copy!.reasons.length, 1, copy!.reasons.join('; '));
    assert.is(copy!.reasons[0], 'file changed: src/b.txt');
    assert.match(r.logs, /builder-ran-1/, 'the RUN after the changed COPY runs again');
  } finally {
    await writeFile(join(env.ctx, 'src', 'b.txt'), 'beta\n');
  }
});

test('an image built FROM a kiln-pushed image does not inherit its inline cache', async () => {
  const dir = join(env.work, 'child');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), `FROM ${env.repo}:latest\nRUN echo child > /child\n`);
  const local = await build({ context: dir, kilnRoot: rootB(), tags: ['child:1'] });
  const cfg = JSON.parse((await openContentStore(rootB()).read(local.config.digest)).toString());
  assert.not.ok(INLINE_CACHE_FIELD in cfg, 'no inherited field without push');
  await build({ context: dir, kilnRoot: rootB(), tags: [`${env.reg.host}/child:1`], push: true });
  const pushed = await rawConfig(`${env.reg.host}/child:1`);
  const doc = pushed[INLINE_CACHE_FIELD];
  assert.ok(doc, 'own inline cache when pushed');
  for (const r of doc.records) assert.not.ok(INLINE_CACHE_FIELD in r.config, 'records hold no nested cache');
});

test('a missing --cache-from ref is a warning, not a failure', async () => {
  const r = await kbuild(rootB(), { cacheFrom: [`${env.repo}:nope`], tags: ['app:again'] });
  const warnings = r.events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);
  assert.ok(warnings.some((w) => w.includes(`${env.repo}:nope`)), warnings.join('\n'));
  assert.is(r.result.layers.length, cold.result.layers.length);
});

test.run();
