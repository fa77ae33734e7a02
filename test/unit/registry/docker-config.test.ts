import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { authKey, eraseCredentials, loadCredentials, storeCredentials } from '../../../src/registry/index.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-dockercfg-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('Docker Hub uses the https://index.docker.io/v1/ key', () => {
  assert.is(authKey('docker.io'), 'https://index.docker.io/v1/');
  assert.is(authKey('registry-1.docker.io'), 'https://index.docker.io/v1/');
  assert.is(authKey('127.0.0.1:5000'), '127.0.0.1:5000');
});

test('auths: base64 auth, identity tokens, URL-shaped keys', () =>
  withDir(async (dir) => {
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
          'https://reg.example:5000/v2/': { auth: Buffer.from('u:p').toString('base64') },
          'tok.example': { identitytoken: 'refresh-xyz' },
        },
      }),
    );
    const env = { DOCKER_CONFIG: dir };
    assert.equal(await loadCredentials('docker.io', env), { username: 'hubuser', password: 'hub:pass' });
    assert.equal(await loadCredentials('reg.example:5000', env), { username: 'u', password: 'p' });
    assert.equal(await loadCredentials('tok.example', env), { identityToken: 'refresh-xyz' });
    assert.is(await loadCredentials('none.example', env), undefined);
  }));

test('store and erase keep other keys, write mode 0600', () =>
  withDir(async (dir) => {
    const env = { DOCKER_CONFIG: dir };
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'keep.example': { auth: 'a2VlcDprZWVw' } }, psFormat: 'x' }));
    await storeCredentials('127.0.0.1:5000', { username: 'u', password: 'p' }, env);
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.is(cfg.psFormat, 'x');
    assert.is(cfg.auths['keep.example'].auth, 'a2VlcDprZWVw');
    assert.is(cfg.auths['127.0.0.1:5000'].auth, Buffer.from('u:p').toString('base64'));
    assert.is((await stat(join(dir, 'config.json'))).mode & 0o777, 0o600);
    assert.is(await eraseCredentials('127.0.0.1:5000', env), true);
    assert.is(await eraseCredentials('127.0.0.1:5000', env), false);
    assert.is(await loadCredentials('127.0.0.1:5000', env), undefined);
    assert.ok(await loadCredentials('keep.example', env));
  }));

test('a missing credential helper is a clear error naming the helper', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'kiln-nonexistent' }));
    try {
      await loadCredentials('x.example', { DOCKER_CONFIG: dir, PATH: '/nonexistent' });
      assert.unreachable();
    } catch (err) {
      assert.match((err as Error).message, 'docker-credential-kiln-nonexistent');
    }
  }));

test.run();
