import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OciLayoutStore, verifyStore } from '../../src/content/index.js';
import { DigestMismatchError, RegistryError } from '../../src/errors.js';
import { pullImage, pushImage, RegistryClient, type PullResult } from '../../src/registry/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { kilnBin } from '../helpers/repo.js';

interface Ctx {
  reg: TestRegistry;
  proxy: FaultProxy;
  work: string;
  ref: string;
  reference: PullResult;
  stores: string[];
  debug: string[];
  client: RegistryClient;
}
const t = suite<Ctx>('registry fault injection');

t.before(async (ctx) => {
  ctx.reg = await startRegistry();
  ctx.proxy = await startFaultProxy(ctx.reg.url);
  ctx.work = await mkdtemp(join(tmpdir(), 'kiln-faults-'));
  await pushBusybox(ctx.reg);
  ctx.stores = [];
  ctx.debug = [];
  ctx.client = new RegistryClient({ retryBaseMs: 10, retries: 3, log: (l) => ctx.debug.push(l) });
  const direct = new RegistryClient();
  ctx.reference = await pullImage(`${ctx.reg.host}/busybox:latest`, { store: new OciLayoutStore(join(ctx.work, 'direct')), client: direct });
  await direct.close();
  ctx.ref = `${ctx.proxy.host}/busybox:latest`;
});
t.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.proxy?.stop();
  await ctx.reg?.stop();
  await rm(ctx.work, { recursive: true, force: true });
});
t.before.each((ctx) => {
  ctx.proxy.clearFaults();
  ctx.proxy.log.length = 0;
  ctx.debug.length = 0;
});

function freshStore(ctx: Ctx): OciLayoutStore {
  const dir = join(ctx.work, `store-${ctx.stores.length}`);
  ctx.stores.push(dir);
  return new OciLayoutStore(dir);
}

const layerPath = (ctx: Ctx) => `/blobs/${ctx.reference.layers[0]!.digest}`;

async function pullAndCheck(ctx: Ctx): Promise<OciLayoutStore> {
  const store = freshStore(ctx);
  const img = await pullImage(ctx.ref, { store, client: ctx.client });
  assert.is(img.descriptor.digest, ctx.reference.descriptor.digest);
  const report = await verifyStore(store);
  assert.equal(report.mismatches, []);
  assert.is(report.checked, 2 + img.layers.length);
  assert.equal(await readdir(join(store.root, 'ingest')), []);
  return store;
}

t('connection reset mid-blob: resumed with a Range request', async (ctx) => {
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.endsWith(layerPath(ctx)), fault: 'reset' });
  await pullAndCheck(ctx);
  const gets = ctx.proxy.log.filter((e) => e.path.endsWith(layerPath(ctx)));
  assert.is(gets[0]!.fault, 'reset');
  assert.match(gets[1]!.range ?? '', /^bytes=[1-9]\d*-$/);
  assert.ok(ctx.debug.some((l) => l.includes('connection dropped after')));
});

t('a resume the server answers with the whole blob (Range ignored): the bytes already kept are skipped', async (ctx) => {
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.endsWith(layerPath(ctx)), fault: 'reset' });
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.endsWith(layerPath(ctx)), fault: 'ignore-range' });
  await pullAndCheck(ctx);
  const gets = ctx.proxy.log.filter((e) => e.path.endsWith(layerPath(ctx)));
  assert.equal(gets.map((g) => [g.fault, g.status]), [['reset', 200], ['ignore-range', 200]]);
  assert.match(gets[1]!.range ?? '', /^bytes=[1-9]\d*-$/);
});

t('truncated body (clean early end): resumed with a Range request', async (ctx) => {
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.endsWith(layerPath(ctx)), fault: 'truncate' });
  await pullAndCheck(ctx);
  const gets = ctx.proxy.log.filter((e) => e.path.endsWith(layerPath(ctx)));
  assert.is(gets.length, 2);
  assert.match(gets[1]!.range ?? '', /^bytes=\d+-$/);
});

t('500 then success on the manifest and on a blob', async (ctx) => {
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.includes('/manifests/'), fault: 'status', status: 500 });
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.endsWith(layerPath(ctx)), fault: 'status', status: 503, times: 2 });
  await pullAndCheck(ctx);
  assert.is(ctx.proxy.log.filter((e) => e.fault === 'status').length, 3);
});

t('429 with Retry-After is honoured', async (ctx) => {
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.endsWith(layerPath(ctx)), fault: 'status', status: 429, retryAfter: 1 });
  const t0 = Date.now();
  await pullAndCheck(ctx);
  assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms`);
  assert.ok(ctx.debug.some((l) => l.includes('retrying in 1000 ms')));
});

t('a corrupted blob (wrong digest) once: downloaded again and stored only when right', async (ctx) => {
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.endsWith(layerPath(ctx)), fault: 'corrupt' });
  await pullAndCheck(ctx);
  assert.is(ctx.proxy.log.filter((e) => e.path.endsWith(layerPath(ctx))).length, 2);
});

t('a blob that is always corrupted: DigestMismatchError, nothing stored', async (ctx) => {
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.endsWith(layerPath(ctx)), fault: 'corrupt', times: 100 });
  const store = freshStore(ctx);
  try {
    await pullImage(ctx.ref, { store, client: ctx.client });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, DigestMismatchError);
  }
  assert.is(await store.stat(ctx.reference.layers[0]!.digest), undefined);
  assert.is(await store.getTag(ctx.ref), undefined);
  assert.equal((await verifyStore(store)).mismatches, []);
});

t('a registry that keeps failing: RegistryError with the status after the retries', async (ctx) => {
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.includes('/manifests/'), fault: 'status', status: 502, times: 100 });
  try {
    await pullImage(ctx.ref, { store: freshStore(ctx), client: ctx.client });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RegistryError);
    assert.is((err as RegistryError).status, 502);
    assert.match((err as Error).message, `Cannot fetch manifest "${ctx.proxy.host}/busybox:latest": 502`);
  }
  assert.is(ctx.proxy.log.length, 4); // 1 try + 3 retries (this client pinged /v2/ earlier)
});

t('a connection reset on every try: RegistryError after the retries', async (ctx) => {
  ctx.proxy.addFault({ match: (m, p) => m === 'GET' && p.endsWith(layerPath(ctx)), fault: 'reset', times: 100 });
  try {
    await pullImage(ctx.ref, { store: freshStore(ctx), client: ctx.client });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RegistryError);
    assert.match((err as Error).message, 'connection dropped after');
  }
});

t('push through faults: a failed chunk resumes from the session offset; a lost chunk answer restarts the blob; a 500 on the manifest PUT is retried', async (ctx) => {
  const store = freshStore(ctx);
  const img = await pullImage(ctx.ref, { store, client: ctx.client });
  // Layer chunks (the config takes at most one PATCH): the 3rd PATCH fails with 503, and the
  // 6th of the PATCHes the second rule sees (it does not see the 3rd) loses its answer.
  let first = 0;
  let second = 0;
  ctx.proxy.addFault({ match: (m) => m === 'PATCH' && ++first === 3, fault: 'status', status: 503 });
  ctx.proxy.addFault({ match: (m) => m === 'PATCH' && ++second === 6, fault: 'reset' });
  ctx.proxy.addFault({ match: (m, p) => m === 'PUT' && p.includes('/manifests/'), fault: 'status', status: 500 });
  const res = await pushImage(store, img.descriptor, `${ctx.proxy.host}/faulty/push:1`, { client: ctx.client, chunkSize: 128 * 1024, monolithicMax: 0, mountFrom: [] });
  assert.is(res.uploaded, 2);
  const log = ctx.proxy.log;
  const show = JSON.stringify(log.map((e) => [e.method, e.path.slice(0, 50), e.status, e.fault, e.contentRange]));
  const session = (p: string) => /\/uploads\/([^?]+)/.exec(p)?.[1];
  // 503 before the registry saw the chunk: the session reports its offset, the same chunk is sent again.
  const failed = log.find((e) => e.method === 'PATCH' && e.fault === 'status')!;
  const after = log.slice(log.indexOf(failed) + 1).filter((e) => session(e.path) === session(failed.path));
  assert.equal([after[0]!.method, after[0]!.status], ['GET', 204], show);
  assert.is(after[1]!.method, 'PATCH', show);
  assert.is(after[1]!.contentRange, failed.contentRange, show);
  // The registry processed the reset chunk but the answer was lost: distribution cancels a session
  // whose state is stale, so the blob is uploaded again in a new session.
  assert.ok(log.some((e) => e.method === 'PATCH' && e.fault === 'reset'), show);
  assert.is(log.filter((e) => e.method === 'POST').length, 3, show);
  assert.ok(log.some((e) => e.method === 'PUT' && e.path.includes('/manifests/') && e.fault === 'status'));
  const direct = new RegistryClient();
  try {
    const back = await pullImage(`${ctx.reg.host}/faulty/push:1`, { store: freshStore(ctx), client: direct });
    assert.equal(back.rawManifest, img.rawManifest);
  } finally {
    await direct.close();
  }
});

t('kiln store verify is clean on every store the faults touched', async (ctx) => {
  for (const dir of ctx.stores) {
    const code = await new Promise<number>((resolve, reject) => {
      const c = spawn(process.execPath, [kilnBin, 'store', 'verify'], { env: { ...process.env, KILN_ROOT: dir }, stdio: 'ignore' });
      const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
      c.on('error', reject);
      c.on('close', (code) => {
        clearTimeout(timer);
        resolve(code ?? -1);
      });
    });
    assert.is(code, 0, `kiln store verify on ${dir}`);
  }
  assert.ok(ctx.stores.length >= 8);
});

t.run();
