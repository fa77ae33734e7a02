import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createServer, request as httpRequest } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OciLayoutStore } from '../../src/content/index.js';
import { RegistryError } from '../../src/errors.js';
import { pullImage, RegistryClient } from '../../src/registry/index.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const t = suite<{ reg: TestRegistry; plain: TestRegistry; work: string }>('TLS, insecure registries and HTTP proxies');

t.before(async (ctx) => {
  ctx.work = await mkdtemp(join(tmpdir(), 'kiln-tls-'));
  const cert = join(ctx.work, 'cert.pem');
  const key = join(ctx.work, 'key.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { timeout: 30_000 });
  ctx.reg = await startRegistry({ httpConfig: `tls:\n  certificate: ${JSON.stringify(cert)}\n  key: ${JSON.stringify(key)}` });
  ctx.plain = await startRegistry();
  await Promise.all([pushBusybox(ctx.reg), pushBusybox(ctx.plain)]);
});
t.after(async (ctx) => {
  await ctx.reg?.stop();
  await ctx.plain?.stop();
  await rm(ctx.work, { recursive: true, force: true });
});

t('a self-signed HTTPS registry marked insecure is used over HTTPS without verification', async ({ reg, work }) => {
  const lines: string[] = [];
  const client = new RegistryClient({ loopbackInsecure: false, insecureRegistries: [reg.host], log: (l) => lines.push(l) });
  try {
    const img = await pullImage(`${reg.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'a')), client });
    assert.is(img.layers.length, 1);
    assert.ok(lines.some((l) => l.startsWith(`GET https://${reg.host}/v2/busybox/manifests/latest`)), lines.join('\n'));
    assert.not.ok(lines.some((l) => l.includes('http://')));
  } finally {
    await client.close();
  }
});

t('an unverifiable certificate on a registry not marked insecure is refused with the --insecure-registry hint', async ({ reg, work }) => {
  const client = new RegistryClient({ loopbackInsecure: false, retries: 0 });
  try {
    await pullImage(`${reg.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'b')), client });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RegistryError);
    assert.is((err as RegistryError).code, 'REGISTRY_UNREACHABLE');
    assert.match((err as RegistryError).hint ?? '', `--insecure-registry ${reg.host}`);
  } finally {
    await client.close();
  }
});

t('plain HTTP only when insecure: loopback by default, refused when that default is off', async ({ plain, work }) => {
  const byDefault = new RegistryClient();
  const strict = new RegistryClient({ loopbackInsecure: false, retries: 0 });
  try {
    const img = await pullImage(`${plain.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'c')), client: byDefault });
    assert.is(img.endpoint.insecure, true);
    try {
      await pullImage(`${plain.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'd')), client: strict });
      assert.unreachable();
    } catch (err) {
      assert.instance(err, RegistryError);
      assert.is((err as RegistryError).code, 'REGISTRY_UNREACHABLE');
    }
  } finally {
    await byDefault.close();
    await strict.close();
  }
});

/**
 * A forward proxy (CONNECT tunnels and absolute-URI requests) that records what it was asked
 * for and resolves the made-up host "registry.kiln.test" to 127.0.0.1: a request that reaches
 * that name can only have come through the proxy.
 */
async function startForwardProxy(): Promise<{ url: string; seen: string[]; stop(): Promise<void> }> {
  const seen: string[] = [];
  const resolveHost = (h: string) => (h === 'registry.kiln.test' ? '127.0.0.1' : h);
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const u = new URL(req.url!);
    const up = httpRequest({ host: resolveHost(u.hostname), port: u.port, path: u.pathname + u.search, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connect', (req, socket, head) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = req.url!.split(':');
    const up = netConnect(Number(port), resolveHost(host!), () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

t('HTTP_PROXY / HTTPS_PROXY carry registry traffic; NO_PROXY and loopback bypass them', async ({ reg, plain, work }) => {
  const proxy = await startForwardProxy();
  const tlsHost = `registry.kiln.test:${reg.port}`;
  const plainHost = `registry.kiln.test:${plain.port}`;
  const env = { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: 'other.example' };
  const viaProxy = new RegistryClient({ env, insecureRegistries: [tlsHost, plainHost] });
  const noProxy = new RegistryClient({ env: { ...env, NO_PROXY: '.kiln.test' }, insecureRegistries: [tlsHost], retries: 0 });
  try {
    const a = await pullImage(`${tlsHost}/busybox:latest`, { store: new OciLayoutStore(join(work, 'p1')), client: viaProxy });
    const b = await pullImage(`${plainHost}/busybox:latest`, { store: new OciLayoutStore(join(work, 'p2')), client: viaProxy });
    assert.is(a.descriptor.digest, b.descriptor.digest);
    assert.ok(proxy.seen.includes(`CONNECT ${tlsHost}`), proxy.seen.join('\n'));
    assert.ok(proxy.seen.some((l) => l.includes(plainHost)), proxy.seen.join('\n'));
    const n = proxy.seen.length;
    // Loopback is never proxied (as in Go's net/http, which docker and skopeo use).
    await pullImage(`${plain.host}/busybox:latest`, { store: new OciLayoutStore(join(work, 'p3')), client: viaProxy });
    assert.is(proxy.seen.length, n);
    // NO_PROXY: the made-up name is looked up directly and does not resolve.
    try {
      await pullImage(`${tlsHost}/busybox:latest`, { store: new OciLayoutStore(join(work, 'p4')), client: noProxy });
      assert.unreachable();
    } catch (err) {
      assert.instance(err, RegistryError);
      assert.is((err as RegistryError).code, 'REGISTRY_UNREACHABLE');
    }
    assert.is(proxy.seen.length, n);
  } finally {
    await viaProxy.close();
    await noProxy.close();
    await proxy.stop();
  }
});

t.run();
