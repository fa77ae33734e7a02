import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Agent } from 'undici';
import { RegistryError } from '../../../src/errors.js';
import { Authenticator } from '../../../src/registry/authenticator.js';
import { parseWwwAuthenticate } from '../../../src/registry/www-authenticate.js';

const agent = new Agent();
const make = (creds: object | undefined, log: string[] = []) => new Authenticator('reg.example:5000', async () => creds, agent, (l) => log.push(l), 'kiln-test');

test('scope escalation merges actions per repository and keeps other scopes', () => {
  const a = make(undefined);
  assert.equal(a.escalate(['repository:a:pull'], ['repository:a:push', 'repository:b:pull', 'registry:catalog:*']), ['registry:catalog:*', 'repository:a:pull,push', 'repository:b:pull']);
});

test('no challenge → anonymous; Basic challenge → Basic header only with credentials', async () => {
  assert.is(await make({ username: 'u', password: 'p' }).authorization([]), undefined);
  const basic = make({ username: 'u', password: 'p' });
  basic.setChallenge(parseWwwAuthenticate('Basic realm="r"'));
  assert.is(await basic.authorization([]), `Basic ${Buffer.from('u:p').toString('base64')}`);
  const anon = make(undefined);
  anon.setChallenge(parseWwwAuthenticate('Basic realm="r"'));
  assert.is(await anon.authorization([]), undefined);
});

test('Bearer: one token request per scope set (concurrent callers share it), cached until expiry; a registry token is sent as is', async () => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url!);
    setTimeout(() => res.end(JSON.stringify({ token: `t${seen.length}`, expires_in: 300 })), 20);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  try {
    const a = make({ username: 'u', password: 'p' });
    const asked = a.setChallenge(parseWwwAuthenticate(`Bearer realm="${realm}",service="svc",scope="repository:x:pull"`));
    assert.equal(asked, ['repository:x:pull']);
    const [h1, h2] = await Promise.all([a.authorization(['repository:x:pull']), a.authorization(['repository:x:pull'])]);
    assert.is(h1, 'Bearer t1');
    assert.is(h2, 'Bearer t1');
    assert.is(await a.authorization(['repository:x:pull,push']), 'Bearer t2');
    assert.is(await a.authorization(['repository:x:pull']), 'Bearer t1');
    a.invalidate(['repository:x:pull']);
    assert.is(await a.authorization(['repository:x:pull']), 'Bearer t3');
    assert.is(seen.length, 3);
    assert.match(seen[0]!, 'service=svc');
    assert.match(seen[0]!, 'scope=repository%3Ax%3Apull');
    assert.match(seen[0]!, 'account=u');
    const rt = make({ registryToken: 'opaque' });
    rt.setChallenge(parseWwwAuthenticate(`Bearer realm="${realm}"`));
    assert.is(await rt.authorization(['repository:x:pull']), 'Bearer opaque');
    assert.is(seen.length, 3);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('a refused token request names the registry and user, never the password', async () => {
  const server = createServer((_req, res) => {
    res.statusCode = 401;
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  const log: string[] = [];
  try {
    const a = make({ username: 'bob', password: 'hunter2-secret' }, log);
    a.setChallenge(parseWwwAuthenticate(`Bearer realm="${realm}",service="svc"`));
    await a.authorization(['repository:x:pull']);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RegistryError);
    assert.is((err as Error).message, 'Cannot authenticate to "reg.example:5000" as "bob": 401 UNAUTHORIZED: bad credentials');
    assert.not.match(JSON.stringify({ m: (err as Error).message, e: err, log }), 'hunter2');
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await agent.close();
  }
});

test.run();
