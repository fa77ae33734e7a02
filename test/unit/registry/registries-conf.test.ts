import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RegistryError } from '../../../src/errors.js';
import { candidateReferences, emptyRegistriesConf, isLoopbackHost, loadRegistriesConf, mergeRegistriesConf, resolveEndpoints } from '../../../src/registry/index.js';

const CONF = `
unqualified-search-registries = ["registry.example.com", "docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "mirror.internal:5000/hub"
insecure = true
[[registry.mirror]]
location = "digest-mirror.internal"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "example.com/team"
location = "registry.internal/team-images"

[[registry]]
location = "plain.internal:5000"
insecure = true

[[registry]]
prefix = "*.evil.example"
blocked = true
`;

function conf() {
  const c = emptyRegistriesConf();
  mergeRegistriesConf(c, CONF, 'test.conf');
  return c;
}

test('docker.io is served from registry-1.docker.io, mirrors first with the path rewritten', () => {
  const eps = resolveEndpoints(conf(), 'docker.io', 'library/busybox');
  assert.equal(eps, [
    { host: 'mirror.internal:5000', repository: 'hub/library/busybox', insecure: true, mirror: true },
    { host: 'registry-1.docker.io', repository: 'library/busybox', insecure: false, mirror: false },
  ]);
  const byDigest = resolveEndpoints(conf(), 'docker.io', 'library/busybox', { byDigest: true });
  assert.equal(byDigest.map((e) => e.host), ['mirror.internal:5000', 'digest-mirror.internal', 'registry-1.docker.io']);
  assert.equal(resolveEndpoints(conf(), 'docker.io', 'library/busybox', { forPush: true }).map((e) => e.host), ['registry-1.docker.io']);
  assert.equal(resolveEndpoints(emptyRegistriesConf(), 'docker.io', 'x/y').map((e) => e.host), ['registry-1.docker.io']);
});

test('prefix rewrite keeps the rest of the path; longest prefix wins', () => {
  const eps = resolveEndpoints(conf(), 'example.com', 'team/app/web');
  assert.equal(eps, [{ host: 'registry.internal', repository: 'team-images/app/web', insecure: false, mirror: false }]);
  assert.equal(resolveEndpoints(conf(), 'example.com', 'other/app')[0]!.host, 'example.com');
});

test('insecure from registries.conf, from --insecure-registry, and for loopback only', () => {
  assert.is(resolveEndpoints(conf(), 'plain.internal:5000', 'a')[0]!.insecure, true);
  assert.is(resolveEndpoints(conf(), 'secure.example:5000', 'a')[0]!.insecure, false);
  assert.is(resolveEndpoints(conf(), 'secure.example:5000', 'a', { insecureRegistries: ['secure.example:5000'] })[0]!.insecure, true);
  assert.is(resolveEndpoints(conf(), '127.0.0.1:5000', 'a')[0]!.insecure, true);
  assert.ok(isLoopbackHost('localhost:5000') && isLoopbackHost('127.3.2.1') && isLoopbackHost('[::1]:5000'));
  assert.not.ok(isLoopbackHost('128.0.0.1:5000') || isLoopbackHost('localhost.example.com'));
});

test('a blocked registry is refused with RegistryError', () => {
  try {
    resolveEndpoints(conf(), 'registry.evil.example', 'x');
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RegistryError);
    assert.is((err as RegistryError).code, 'REGISTRY_BLOCKED');
  }
});

test('unqualified names use the search registries in order; qualified names mean themselves', () => {
  assert.equal(candidateReferences('busybox:1', conf()).map(String), ['registry.example.com/busybox:1', 'docker.io/library/busybox:1']);
  assert.equal(candidateReferences('127.0.0.1:5000/busybox', conf()).map(String), ['127.0.0.1:5000/busybox:latest']);
  assert.equal(candidateReferences('busybox', emptyRegistriesConf()).map(String), ['docker.io/library/busybox:latest']);
});

test('files: CONTAINERS_REGISTRIES_CONF alone; else the user file, then its .d drop-ins in order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-regconf-'));
  try {
    const only = join(dir, 'only.conf');
    await writeFile(only, '[[registry]]\nlocation = "a.example"\ninsecure = true\n');
    const c1 = await loadRegistriesConf({ CONTAINERS_REGISTRIES_CONF: only, XDG_CONFIG_HOME: join(dir, 'cfg') });
    assert.equal(c1.files, [only]);
    assert.is(c1.registries[0]!.insecure, true);
    const user = join(dir, 'cfg', 'containers', 'registries.conf');
    await mkdir(`${user}.d`, { recursive: true });
    await writeFile(user, 'unqualified-search-registries = ["one.example"]\n[[registry]]\nlocation = "b.example"\n');
    await writeFile(join(`${user}.d`, '10-b.conf'), '[[registry]]\nlocation = "b.example"\nblocked = true\n');
    await writeFile(join(`${user}.d`, '20-c.conf'), 'unqualified-search-registries = ["two.example"]\n');
    const c2 = await loadRegistriesConf({ XDG_CONFIG_HOME: join(dir, 'cfg') });
    assert.equal(c2.files, [user, join(`${user}.d`, '10-b.conf'), join(`${user}.d`, '20-c.conf')]);
    assert.is(c2.registries.find((r) => r.prefix === 'b.example')!.blocked, true);
    assert.equal(c2.unqualifiedSearchRegistries, ['two.example']);
    await assert.not.throws(() => undefined);
    let threw = false;
    try {
      await loadRegistriesConf({ CONTAINERS_REGISTRIES_CONF: join(dir, 'missing.conf') });
    } catch {
      threw = true;
    }
    assert.ok(threw);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('version 1 files and bad TOML are refused with the file name', () => {
  const c = emptyRegistriesConf();
  assert.throws(() => mergeRegistriesConf(c, '[registries.search]\nregistries = ["x"]\n', 'v1.conf'), /version 1/);
  assert.throws(() => mergeRegistriesConf(c, '[[registry]\n', 'bad.conf'), /bad\.conf/);
});

test.run();
