import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OciLayoutStore } from '../../src/content/index.js';
import { RegistryError } from '../../src/errors.js';
import { emptyRegistriesConf, mergeRegistriesConf, pullImage, pushImage, RegistryClient } from '../../src/registry/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

interface Ctx {
  primary: TestRegistry;
  mirror: TestRegistry;
  primaryProxy: FaultProxy;
  mirrorProxy: FaultProxy;
  work: string;
}
const t = suite<Ctx>('registries.conf mirrors and rewrites against real registries');

t.before(async (ctx) => {
  [ctx.primary, ctx.mirror] = await Promise.all([startRegistry(), startRegistry()]);
  ctx.primaryProxy = await startFaultProxy(ctx.primary.url);
  ctx.mirrorProxy = await startFaultProxy(ctx.mirror.url);
  ctx.work = await mkdtemp(join(tmpdir(), 'kiln-mirrors-'));
  await pushBusybox(ctx.primaryProxy.host, { repo: 'library/busybox', tag: '1' });
  await pushBusybox(ctx.primaryProxy.host, { repo: 'library/busybox', tag: 'only-primary' });
  // The mirror keeps images under a path prefix, as a pull-through cache often does.
  await pushBusybox(ctx.mirrorProxy.host, { repo: 'cache/library/busybox', tag: '1' });
});
t.after(async (ctx) => {
  await ctx.primaryProxy?.stop();
  await ctx.mirrorProxy?.stop();
  await Promise.all([ctx.primary?.stop(), ctx.mirror?.stop()]);
  await rm(ctx.work, { recursive: true, force: true });
});
t.before.each((ctx) => {
  ctx.primaryProxy.log.length = 0;
  ctx.mirrorProxy.log.length = 0;
});

function clientWith(toml: string): RegistryClient {
  const conf = emptyRegistriesConf();
  mergeRegistriesConf(conf, toml, 'test.conf');
  return new RegistryClient({ registriesConf: conf, retries: 1, retryBaseMs: 5 });
}

const mirrorConf = (ctx: Ctx) => `
[[registry]]
prefix = "pretend.example"
location = "${ctx.primaryProxy.host}"
[[registry.mirror]]
location = "${ctx.mirrorProxy.host}/cache"
`;

t('a name is served from its mirror when the mirror has it; tagged under the name asked for', async (ctx) => {
  const client = clientWith(mirrorConf(ctx));
  const store = new OciLayoutStore(join(ctx.work, 's1'));
  try {
    const img = await pullImage('pretend.example/library/busybox:1', { store, client });
    assert.is(img.endpoint.host, ctx.mirrorProxy.host);
    assert.is(img.endpoint.repository, 'cache/library/busybox');
    assert.ok(ctx.mirrorProxy.log.some((e) => e.path === '/v2/cache/library/busybox/manifests/1'));
    assert.not.ok(ctx.primaryProxy.log.some((e) => e.path.includes('/manifests/')));
    assert.ok(await store.getTag('pretend.example/library/busybox:1'));
  } finally {
    await client.close();
  }
});

t('a mirror without the image falls back to the primary location', async (ctx) => {
  const client = clientWith(mirrorConf(ctx));
  try {
    const img = await pullImage('pretend.example/library/busybox:only-primary', { store: new OciLayoutStore(join(ctx.work, 's2')), client });
    assert.is(img.endpoint.host, ctx.primaryProxy.host);
    assert.ok(ctx.mirrorProxy.log.some((e) => e.path.endsWith('/manifests/only-primary') && e.status === 404));
  } finally {
    await client.close();
  }
});

t('a down mirror falls back too; push never uses mirrors', async (ctx) => {
  const client = clientWith(mirrorConf(ctx));
  ctx.mirrorProxy.addFault({ match: () => true, fault: 'status', status: 503, times: 1000 });
  try {
    const store = new OciLayoutStore(join(ctx.work, 's3'));
    const img = await pullImage('pretend.example/library/busybox:1', { store, client });
    assert.is(img.endpoint.host, ctx.primaryProxy.host);
    ctx.mirrorProxy.log.length = 0;
    await pushImage(store, img.descriptor, 'pretend.example/pushed/busybox:1', { client });
    assert.is(ctx.mirrorProxy.log.length, 0);
    assert.ok(ctx.primaryProxy.log.some((e) => e.method === 'PUT' && e.path === '/v2/pushed/busybox/manifests/1'));
  } finally {
    ctx.mirrorProxy.clearFaults();
    await client.close();
  }
});

t('a blocked prefix is refused before any request', async (ctx) => {
  const client = clientWith(`[[registry]]\nprefix = "${ctx.primaryProxy.host}/library"\nblocked = true\n`);
  try {
    await pullImage(`${ctx.primaryProxy.host}/library/busybox:1`, { store: new OciLayoutStore(join(ctx.work, 's4')), client });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RegistryError);
    assert.is((err as RegistryError).code, 'REGISTRY_BLOCKED');
  }
  assert.is(ctx.primaryProxy.log.length, 0);
  await client.close();
});

t('an unqualified name tries unqualified-search-registries in order until one has it', async (ctx) => {
  const client = clientWith(`unqualified-search-registries = ["${ctx.mirrorProxy.host}", "${ctx.primaryProxy.host}"]\n`);
  const store = new OciLayoutStore(join(ctx.work, 's5'));
  await pushBusybox(ctx.primaryProxy.host, { repo: 'busybox', tag: 'search' });
  try {
    const img = await pullImage('busybox:search', { store, client });
    assert.is(img.reference, `${ctx.primaryProxy.host}/busybox:search`);
    assert.ok(ctx.mirrorProxy.log.some((e) => e.path === '/v2/busybox/manifests/search' && e.status === 404));
    assert.ok(await store.getTag(`${ctx.primaryProxy.host}/busybox:search`));
  } finally {
    await client.close();
  }
});

t.run();
