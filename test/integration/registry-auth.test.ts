import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OciLayoutStore } from '../../src/content/index.js';
import { RegistryError } from '../../src/errors.js';
import { loadCredentials, pullImage, pushImage, RegistryClient } from '../../src/registry/index.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { htpasswdAuth, startTokenIssuer, type HtpasswdAuth, type TokenIssuer } from '../helpers/registry-auth.js';
import { runKiln } from '../helpers/run-kiln.js';

const USER = 'alice';
const PASS = 'S3cret-Pa55-xyzzy';
const WRONG = 'Wr0ng-Pa55-plugh';
/** Every form a secret could leak in. */
const SECRETS = [PASS, WRONG, Buffer.from(`${USER}:${PASS}`).toString('base64'), Buffer.from(`${USER}:${WRONG}`).toString('base64'), 'identity-token-s3cret'];

function assertNoSecret(text: string, where: string): void {
  for (const s of SECRETS) assert.not.ok(text.includes(s), `${where} leaks a secret`);
  assert.not.match(text, /eyJ[A-Za-z0-9_-]{10,}\./, `${where} leaks a JWT`);
}

function kiln(args: string[], env: Record<string, string>, stdin?: string) {
  return runKiln(args, { env, ...(stdin === undefined ? {} : { stdin }) });
}

const basic = suite<{ reg: TestRegistry; auth: HtpasswdAuth; work: string; env: Record<string, string> }>('registry auth: Basic (htpasswd)');

basic.before(async (ctx) => {
  ctx.auth = await htpasswdAuth({ [USER]: PASS });
  ctx.reg = await startRegistry({ extraConfig: ctx.auth.config });
  ctx.work = await mkdtemp(join(tmpdir(), 'kiln-auth-'));
  ctx.env = { DOCKER_CONFIG: join(ctx.work, 'docker'), KILN_ROOT: join(ctx.work, 'root'), CONTAINERS_REGISTRIES_CONF: join(ctx.work, 'registries.conf') };
  await writeFile(ctx.env.CONTAINERS_REGISTRIES_CONF!, '');
  await pushBusybox(ctx.reg, { skopeoArgs: ['--dest-creds', `${USER}:${PASS}`] });
});
basic.after(async (ctx) => {
  await ctx.reg?.stop();
  await ctx.auth?.cleanup();
  await rm(ctx.work, { recursive: true, force: true });
});

basic('anonymous pull is refused with a 401 naming the registry and a login hint', async ({ reg, env }) => {
  const r = await kiln(['pull', `${reg.host}/busybox:latest`], env);
  assert.is(r.code, 1);
  assert.match(r.err, `Cannot fetch manifest "${reg.host}/busybox:latest": 401`);
  assert.match(r.err, `kiln login ${reg.host}`);
});

basic('kiln login with a wrong password fails clearly and saves nothing', async ({ reg, env }) => {
  const r = await kiln(['login', '-u', USER, '--password-stdin', '--debug', reg.host], env, WRONG + '\n');
  assert.is(r.code, 1);
  assert.match(r.err, reg.host);
  assert.match(r.err, '401');
  assertNoSecret(r.out + r.err, 'failed login output');
  await assert.not.throws(() => undefined);
  let saved = '';
  try {
    saved = await readFile(join(env.DOCKER_CONFIG!, 'config.json'), 'utf8');
  } catch {
    /* not written */
  }
  assert.not.match(saved, reg.host);
});

basic('login saves Docker-compatible credentials; pull --debug and push use them and print no secret', async ({ reg, env }) => {
  const login = await kiln(['login', '-u', USER, '--password-stdin', '--debug', reg.host], env, PASS + '\n');
  assert.is(login.code, 0, login.err);
  const cfg = JSON.parse(await readFile(join(env.DOCKER_CONFIG!, 'config.json'), 'utf8'));
  assert.is(cfg.auths[reg.host].auth, Buffer.from(`${USER}:${PASS}`).toString('base64'));
  assert.equal(await loadCredentials(reg.host, env), { username: USER, password: PASS });
  const pull = await kiln(['pull', '--debug', `${reg.host}/busybox:latest`], env);
  assert.is(pull.code, 0, pull.err);
  assert.match(pull.err, 'DEBUG GET');
  const push = await kiln(['push', '--debug', `${reg.host}/busybox:latest`, `${reg.host}/copy/busybox:2`], env);
  assert.is(push.code, 0, push.err);
  assert.match(push.out, `${reg.host}/copy/busybox:2@sha256:`);
  const inspect = await kiln(['inspect', '--remote', '--debug', `${reg.host}/copy/busybox:2`], env);
  assert.is(inspect.code, 0, inspect.err);
  assert.is(JSON.parse(inspect.out).source, 'registry');
  for (const r of [login, pull, push, inspect]) assertNoSecret(r.out + r.err, 'kiln output');
  const logout = await kiln(['logout', reg.host], env);
  assert.is(logout.code, 0);
  assert.match(logout.out, `Removing login credentials for ${reg.host}`);
  const after = JSON.parse(await readFile(join(env.DOCKER_CONFIG!, 'config.json'), 'utf8'));
  assert.is(after.auths[reg.host], undefined);
  const denied = await kiln(['pull', `${reg.host}/busybox:latest`], { ...env, KILN_ROOT: join(env.KILN_ROOT!, 'after-logout') });
  assert.is(denied.code, 1);
  assert.match(denied.err, '401');
});

basic('a wrong saved password gives a clear 401 naming the registry, never the secret', async ({ reg, env }) => {
  const wrongEnv = { ...env, DOCKER_CONFIG: join(env.DOCKER_CONFIG!, 'wrong') };
  await mkdir(wrongEnv.DOCKER_CONFIG, { recursive: true });
  await writeFile(join(wrongEnv.DOCKER_CONFIG, 'config.json'), JSON.stringify({ auths: { [`http://${reg.host}`]: { auth: Buffer.from(`${USER}:${WRONG}`).toString('base64') } } }));
  const r = await kiln(['pull', '--debug', `${reg.host}/busybox:latest`], { ...wrongEnv, KILN_ROOT: join(env.KILN_ROOT!, 'w') });
  assert.is(r.code, 1);
  assert.match(r.err, `"${reg.host}/busybox:latest": 401`);
  assertNoSecret(r.out + r.err, 'wrong-password output');
});

basic('credentials come from a credHelpers entry (docker-credential-<name> get)', async ({ reg, work }) => {
  const bin = join(work, 'bin');
  await mkdir(bin, { recursive: true });
  const helper = join(bin, 'docker-credential-kilntest');
  await writeFile(helper, `#!/bin/sh\nread server\nif [ "$1" = get ] && [ "$server" = "${reg.host}" ]; then printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASS}"}' "$server"; exit 0; fi\necho "credentials not found in native keychain"; exit 1\n`);
  await chmod(helper, 0o755);
  const dockerDir = join(work, 'helper-docker');
  await mkdir(dockerDir, { recursive: true });
  await writeFile(join(dockerDir, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'kilntest' } }));
  const env = { ...process.env, DOCKER_CONFIG: dockerDir, PATH: `${bin}:${process.env.PATH}` };
  assert.equal(await loadCredentials(reg.host, env), { username: USER, password: PASS });
  assert.is(await loadCredentials('other.example:5000', env), undefined);
  const client = new RegistryClient({ env });
  try {
    const img = await pullImage(`${reg.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'helper-store')), client });
    assert.is(img.layers.length, 1);
  } finally {
    await client.close();
  }
});

basic('redirects to blob storage are followed without forwarding Authorization', async ({ reg, work }) => {
  const storageAuth = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
  const proxy = await startFaultProxy(reg.url, { storageAuthorization: storageAuth });
  const lines: string[] = [];
  const client = new RegistryClient({ credentials: async () => ({ username: USER, password: PASS }), log: (l) => lines.push(l) });
  try {
    proxy.addFault({ match: (m, p) => m === 'GET' && p.startsWith('/v2/') && p.includes('/blobs/'), fault: 'redirect', times: 10 });
    const img = await pullImage(`${proxy.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'redirect')), client });
    const redirected = proxy.log.filter((e) => e.fault === 'redirect');
    const storage = proxy.log.filter((e) => e.path.startsWith('/_storage/'));
    assert.is(redirected.length, 1 + img.layers.length);
    assert.ok(redirected.every((e) => e.authorization), 'registry requests carry credentials');
    assert.is(storage.length, redirected.length);
    assert.ok(storage.every((e) => !e.authorization && e.status === 200), 'storage requests carry no Authorization');
    assert.ok(lines.some((l) => l.includes('(redirect)')));
    assert.not.ok(lines.join('\n').includes('signed-url-secret'), 'signed URL query is redacted in the debug log');
  } finally {
    await client.close();
    await proxy.stop();
  }
});

basic.run();

const bearer = suite<{ reg: TestRegistry; issuer: TokenIssuer; work: string }>('registry auth: Bearer tokens');

bearer.before(async (ctx) => {
  ctx.issuer = await startTokenIssuer({ users: { [USER]: PASS }, refreshTokens: { 'identity-token-s3cret': USER } });
  ctx.reg = await startRegistry({ extraConfig: ctx.issuer.config });
  ctx.work = await mkdtemp(join(tmpdir(), 'kiln-bearer-'));
  await pushBusybox(ctx.reg, { repo: 'base/busybox', skopeoArgs: ['--dest-creds', `${USER}:${PASS}`] });
});
bearer.after(async (ctx) => {
  await ctx.reg?.stop();
  await ctx.issuer?.stop();
  await rm(ctx.work, { recursive: true, force: true });
});

bearer('anonymous pull gets a pull-only token; anonymous push is refused', async ({ reg, issuer, work }) => {
  const client = new RegistryClient({ credentials: async () => undefined, retryBaseMs: 5 });
  const store = new OciLayoutStore(join(work, 'anon'));
  try {
    const img = await pullImage(`${reg.host}/base/busybox:latest`, { store, client });
    const anon = issuer.requests.filter((r) => r.user === undefined && r.status === 200);
    assert.ok(anon.some((r) => r.scopes.includes('repository:base/busybox:pull')));
    try {
      await pushImage(store, img.descriptor, `${reg.host}/anon/busybox:1`, { client, mountFrom: [] });
      assert.unreachable();
    } catch (err) {
      assert.instance(err, RegistryError);
      assert.is((err as RegistryError).status, 401);
      assert.match((err as Error).message, reg.host);
    }
  } finally {
    await client.close();
  }
});

bearer('scope escalation: pull from A with a pull token, then push to B with a pull,push token and mount from A', async ({ reg, issuer, work }) => {
  const client = new RegistryClient({ credentials: async () => ({ username: USER, password: PASS }) });
  const store = new OciLayoutStore(join(work, 'esc'));
  try {
    const before = issuer.requests.length;
    const img = await pullImage(`${reg.host}/base/busybox:latest`, { store, client });
    const res = await pushImage(store, img.descriptor, `${reg.host}/team/app:1`, { client });
    assert.is(res.mounted, 2);
    const reqs = issuer.requests.slice(before).filter((r) => r.status === 200);
    assert.ok(reqs.every((r) => r.user === USER));
    assert.ok(reqs.some((r) => r.scopes.join(' ') === 'repository:base/busybox:pull'), JSON.stringify(reqs.map((r) => r.scopes)));
    assert.ok(reqs.some((r) => r.scopes.includes('repository:team/app:pull,push') && r.scopes.includes('repository:base/busybox:pull')), JSON.stringify(reqs.map((r) => r.scopes)));
    // Tokens are cached per scope set: far fewer token requests than registry requests.
    assert.ok(reqs.length <= 4, `token requests: ${reqs.length}`);
  } finally {
    await client.close();
  }
});

bearer('an identity token is exchanged with grant_type=refresh_token', async ({ reg, issuer, work }) => {
  const client = new RegistryClient({ credentials: async () => ({ identityToken: 'identity-token-s3cret' }) });
  try {
    const before = issuer.requests.length;
    await pullImage(`${reg.host}/base/busybox:latest`, { store: new OciLayoutStore(join(work, 'idt')), client });
    const reqs = issuer.requests.slice(before);
    assert.ok(reqs.length >= 1);
    assert.ok(reqs.every((r) => r.method === 'POST' && r.user === USER && r.status === 200));
  } finally {
    await client.close();
  }
});

bearer('a wrong password at the token endpoint is a 401 naming the registry and the user, never the secret', async ({ reg, work }) => {
  const lines: string[] = [];
  const client = new RegistryClient({ credentials: async () => ({ username: USER, password: WRONG }), log: (l) => lines.push(l) });
  try {
    await pullImage(`${reg.host}/base/busybox:latest`, { store: new OciLayoutStore(join(work, 'wrong')), client });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RegistryError);
    const e = err as RegistryError;
    assert.is(e.status, 401);
    assert.match(e.message, `Cannot authenticate to "${reg.host}" as "${USER}": 401`);
    assertNoSecret(`${e.message} ${e.hint} ${e.url} ${JSON.stringify(e)} ${e.stack}`, 'error');
    assertNoSecret(lines.join('\n'), 'debug log');
  } finally {
    await client.close();
  }
});

bearer('expired tokens are fetched again (1 s lifetime)', async ({ work }) => {
  const issuer = await startTokenIssuer({ users: { [USER]: PASS }, expiresIn: 1 });
  const reg = await startRegistry({ extraConfig: issuer.config });
  const client = new RegistryClient({ credentials: async () => ({ username: USER, password: PASS }) });
  try {
    await pushBusybox(reg, { skopeoArgs: ['--dest-creds', `${USER}:${PASS}`] });
    await pullImage(`${reg.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'exp1')), client });
    const n = issuer.requests.length;
    await pullImage(`${reg.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'exp2')), client });
    assert.ok(issuer.requests.length > n, 'a new token was fetched');
  } finally {
    await client.close();
    await reg.stop();
    await issuer.stop();
  }
});

bearer('a cached token the registry refuses (401) is fetched again once', async ({ work }) => {
  const issuer = await startTokenIssuer({ users: { [USER]: PASS } });
  const reg = await startRegistry({ extraConfig: issuer.config });
  const client = new RegistryClient({ credentials: async () => ({ username: USER, password: PASS }) });
  try {
    await pushBusybox(reg, { skopeoArgs: ['--dest-creds', `${USER}:${PASS}`] });
    issuer.requests.length = 0;
    issuer.expireNext(1);
    const img = await pullImage(`${reg.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'refresh')), client });
    assert.is(img.layers.length, 1);
    const forRepo = issuer.requests.filter((r) => r.scopes.includes('repository:busybox:pull'));
    assert.is(forRepo.length, 2, 'one refused token, one fresh');
  } finally {
    await client.close();
    await reg.stop();
    await issuer.stop();
  }
});

bearer.run();
