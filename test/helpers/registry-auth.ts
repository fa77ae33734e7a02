/**
 * Auth for the test registry (test/helpers/registry.ts → startRegistry({ extraConfig })).
 *
 *   const basic = await htpasswdAuth({ alice: 'secret' });      // bcrypt via `htpasswd -B`
 *   const reg = await startRegistry({ extraConfig: basic.config });
 *   await basic.cleanup();
 *
 *   const issuer = await startTokenIssuer({ users: { alice: 'secret' }, grants: … });
 *   const reg = await startRegistry({ extraConfig: issuer.config });
 *   issuer.requests   // every token request: user, scopes asked, actions granted
 *   await issuer.stop();
 *
 * The token issuer is a small HTTP server that answers the distribution token
 * protocol (GET with Basic auth, or POST grant_type=password|refresh_token) with
 * RS256 JWTs signed by a throwaway key whose self-signed certificate (made with
 * openssl) is the registry's rootcertbundle; the JWT header carries it in x5c.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface HtpasswdAuth {
  config: string;
  path: string;
  cleanup(): Promise<void>;
}

/** An htpasswd file with bcrypt hashes (the registry accepts only bcrypt) and its `auth:` YAML. */
export async function htpasswdAuth(users: Record<string, string>, realm = 'kiln-test'): Promise<HtpasswdAuth> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-htpasswd-'));
  const path = join(dir, 'htpasswd');
  const lines: string[] = [];
  for (const [user, pass] of Object.entries(users)) {
    // -b takes the password from argv: fine for throwaway test passwords. -C 4: fast bcrypt.
    const { stdout } = await run('htpasswd', ['-nbBC', '4', user, pass], { timeout: 20_000 });
    lines.push(stdout.trim());
  }
  await writeFile(path, lines.join('\n') + '\n');
  const config = ['auth:', '  htpasswd:', `    realm: ${realm}`, `    path: ${JSON.stringify(path)}`].join('\n');
  return { config, path, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface TokenRequest {
  method: string;
  user: string | undefined;
  scopes: string[];
  granted: Array<{ type: string; name: string; actions: string[] }>;
  status: number;
}

export interface TokenIssuerOptions {
  users: Record<string, string>;
  /** Identity (refresh) tokens → user name. */
  refreshTokens?: Record<string, string>;
  /** Actions granted to `user` (undefined = anonymous) on repository `name`; default: users all asked, anonymous pull only. */
  grants?: (user: string | undefined, name: string, asked: string[]) => string[];
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
  /**
   * The first N tokens are signed already expired (exp 10 minutes ago, beyond the registry's
   * 60 s leeway) while the response still claims `expiresIn`: the registry refuses them with
   * 401, as it would a revoked token, and a client must fetch a new one.
   */
  expiredFirst?: number;
  service?: string;
}

export interface TokenIssuer {
  realm: string;
  service: string;
  /** YAML `auth:` block for startRegistry({ extraConfig }). */
  config: string;
  requests: TokenRequest[];
  /** From now on, sign the next `n` tokens already expired (see `expiredFirst`). */
  expireNext(n: number): void;
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function parseScope(s: string): { type: string; name: string; actions: string[] } | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of req) s += c.toString();
  return s;
}

export async function startTokenIssuer(opts: TokenIssuerOptions): Promise<TokenIssuer> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-token-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=kiln-test-token-issuer'], { timeout: 30_000 });
  const key = createPrivateKey(await readFile(keyPath));
  const certDer = new X509Certificate(await readFile(certPath)).raw;
  const service = opts.service ?? 'kiln-test-registry';
  const issuerName = 'kiln-test-issuer';
  const requests: TokenRequest[] = [];
  const grants = opts.grants ?? ((user, _name, asked) => (user ? asked : asked.filter((a) => a === 'pull')));

  let expiredLeft = opts.expiredFirst ?? 0;
  const issue = (user: string | undefined, scopes: string[]) => {
    const access = scopes
      .map(parseScope)
      .filter((x): x is NonNullable<typeof x> => !!x)
      .map((s) => ({ type: s.type, name: s.name, actions: grants(user, s.name, s.actions) }));
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const expired = expiredLeft > 0;
    if (expired) expiredLeft--;
    const exp = expired ? now - 600 : now + (opts.expiresIn ?? 300);
    const claims = { iss: issuerName, sub: user ?? '', aud: service, exp, nbf: expired ? now - 1200 : now - 10, iat: expired ? now - 1200 : now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(input), key);
    return { token: `${input}.${b64url(sig)}`, access };
  };

  const reply = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let user: string | undefined;
    let scopes: string[] = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    let refresh = false;
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      if (form.get('grant_type') === 'refresh_token') {
        user = opts.refreshTokens?.[form.get('refresh_token') ?? ''];
        refresh = true;
        if (!user) {
          requests.push({ method: 'POST', user: undefined, scopes, granted: [], status: 401 });
          return reply(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid refresh token' }] });
        }
      } else if (form.get('grant_type') === 'password') {
        const u = form.get('username') ?? '';
        if (opts.users[u] === undefined || opts.users[u] !== form.get('password')) {
          requests.push({ method: 'POST', user: u, scopes, granted: [], status: 401 });
          return reply(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] });
        }
        user = u;
      }
    } else {
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const dec = Buffer.from(auth.slice(6), 'base64').toString();
        const i = dec.indexOf(':');
        const u = dec.slice(0, i);
        if (opts.users[u] === undefined || opts.users[u] !== dec.slice(i + 1)) {
          requests.push({ method: 'GET', user: u, scopes, granted: [], status: 401 });
          res.setHeader('www-authenticate', 'Basic realm="kiln-test-token"');
          return reply(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] });
        }
        user = u;
      }
    }
    const { token, access } = issue(user, scopes);
    requests.push({ method: req.method ?? 'GET', user, scopes, granted: access, status: 200 });
    const body: Record<string, unknown> = { token, access_token: token, expires_in: opts.expiresIn ?? 300, issued_at: new Date().toISOString() };
    if (refresh) body.refresh_token = 'unchanged';
    reply(res, 200, body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const realm = `http://127.0.0.1:${port}/token`;
  const config = ['auth:', '  token:', `    realm: ${realm}`, `    service: ${service}`, `    issuer: ${issuerName}`, `    rootcertbundle: ${JSON.stringify(certPath)}`].join('\n');
  return {
    realm,
    service,
    config,
    requests,
    expireNext: (n: number) => {
      expiredLeft = n;
    },
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
