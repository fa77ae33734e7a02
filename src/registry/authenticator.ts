import type { Dispatcher } from 'undici';
import { request } from './undici-lite.js';
import { RegistryError, redactUrl } from '../errors.js';
import type { Credentials } from './docker-config.js';
import { describeErrorBody } from './http-util.js';
import type { AuthChallenge } from './www-authenticate.js';

/**
 * Authorization for one registry host: remembers the challenge from /v2/ (or any
 * 401), sends Basic credentials or Bearer tokens, and caches tokens per scope set
 * until shortly before they expire. Secrets never leave this object except in
 * Authorization headers; errors name the registry and the user, never a secret.
 */
export interface TokenResponse {
  token: string;
  expiresAt: number;
}

/** Treat a token as expired this long before the server says it does. */
const EXPIRY_MARGIN_MS = 10_000;
const DEFAULT_TOKEN_LIFETIME_S = 60;

function mergeScopes(a: string[], b: string[]): string[] {
  // repository:NAME:actions entries for the same NAME merge their actions.
  const byName = new Map<string, Set<string>>();
  const other = new Set<string>();
  for (const s of [...a, ...b]) {
    const m = /^(repository(?:\([^)]*\))?:[^:]+):(.*)$/.exec(s);
    if (!m) {
      other.add(s);
      continue;
    }
    const set = byName.get(m[1]!) ?? new Set<string>();
    for (const act of m[2]!.split(',')) if (act) set.add(act);
    byName.set(m[1]!, set);
  }
  const out = [...other];
  for (const [name, acts] of byName) out.push(`${name}:${[...acts].sort().join(',')}`);
  return out.sort();
}

/** `p`, or a rejection as soon as `signal` aborts (the listener is removed either way). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class Authenticator {
  readonly host: string;
  private challenge: AuthChallenge | undefined;
  private readonly tokens = new Map<string, TokenResponse>();
  private readonly pending = new Map<string, Promise<TokenResponse>>();
  private credentials: Credentials | undefined;
  private credentialsLoaded = false;

  constructor(
    host: string,
    private readonly loadCreds: () => Promise<Credentials | undefined>,
    private readonly dispatcher: Dispatcher,
    private readonly log: (line: string) => void,
    private readonly userAgent: string,
  ) {
    this.host = host;
  }

  private async creds(): Promise<Credentials | undefined> {
    if (!this.credentialsLoaded) {
      this.credentials = await this.loadCreds();
      this.credentialsLoaded = true;
    }
    return this.credentials;
  }

  /** Record the server's challenge (from /v2/ or a 401). Returns the scopes it asked for, if any. */
  setChallenge(challenges: AuthChallenge[]): string[] {
    const pick = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (pick) this.challenge = pick;
    const scope = pick?.params.scope;
    return scope ? scope.split(' ').filter(Boolean) : [];
  }

  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  /** Forget a cached token (the server refused it). */
  invalidate(scopes: string[]): void {
    this.tokens.delete(mergeScopes(scopes, []).join(' '));
  }

  /** The Authorization header value for a request needing `scopes`, or undefined (anonymous). */
  async authorization(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    const creds = await this.creds();
    if (c.scheme === 'basic') {
      if (!creds?.username) return undefined;
      return `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
    }
    if (c.scheme !== 'bearer') return undefined;
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const key = mergeScopes(scopes, []).join(' ');
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt - EXPIRY_MARGIN_MS > Date.now()) return `Bearer ${cached.token}`;
    // Concurrent requests for the same scopes share one token request.
    let pending = this.pending.get(key);
    if (!pending) {
      // Not tied to this caller's signal: others may be waiting on the same request.
      pending = this.fetchToken(mergeScopes(scopes, []), creds).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    const tok = signal ? await abortable(pending, signal) : await pending;
    this.tokens.set(key, tok);
    return `Bearer ${tok.token}`;
  }

  /** Scopes to ask for after a 401 that named what it wanted (scope escalation). */
  escalate(scopes: string[], asked: string[]): string[] {
    return mergeScopes(scopes, asked);
  }

  private async fetchToken(scopes: string[], creds: Credentials | undefined, signal?: AbortSignal): Promise<TokenResponse> {
    const realm = this.challenge!.params.realm;
    if (!realm) {
      throw new RegistryError(`Cannot authenticate to "${this.host}": its Bearer challenge names no realm`, { registry: this.host, code: 'AUTH_FAILED' });
    }
    const service = this.challenge!.params.service;
    const url = new URL(realm);
    let res: Dispatcher.ResponseData;
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'kiln', access_type: 'offline' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      headers['content-type'] = 'application/x-www-form-urlencoded';
      this.log(`POST ${redactUrl(url.toString())} (token, identity token, scopes ${scopes.join(' ') || '-'})`);
      res = await request(url, { method: 'POST', headers, body: form.toString(), dispatcher: this.dispatcher, signal: signal ?? null });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (creds?.username) {
        url.searchParams.set('account', creds.username);
        headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
      }
      this.log(`GET ${redactUrl(url.toString())} (token${creds?.username ? `, as "${creds.username}"` : ', anonymous'})`);
      res = await request(url, { method: 'GET', headers, dispatcher: this.dispatcher, signal: signal ?? null });
    }
    const text = await res.body.text();
    this.log(`  token endpoint answered ${res.statusCode}`);
    if (res.statusCode !== 200) {
      const who = creds?.username ? ` as "${creds.username}"` : creds?.identityToken ? ' with an identity token' : ' anonymously';
      const detail = describeErrorBody(text) ?? (res.statusCode === 401 ? 'unauthorized' : `HTTP ${res.statusCode}`);
      throw new RegistryError(`Cannot authenticate to "${this.host}"${who}: ${res.statusCode} ${detail}`, {
        registry: this.host,
        url: url.origin + url.pathname,
        method: 'GET',
        status: res.statusCode,
        code: res.statusCode === 401 || res.statusCode === 403 ? 'UNAUTHORIZED' : 'AUTH_FAILED',
        hint: res.statusCode === 401 ? `Check the username and password: run "kiln login ${this.host}".` : undefined,
      });
    }
    let doc: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      doc = JSON.parse(text);
    } catch {
      throw new RegistryError(`Cannot authenticate to "${this.host}": the token endpoint sent no JSON`, { registry: this.host, code: 'AUTH_FAILED' });
    }
    const token = doc.token ?? doc.access_token;
    if (!token) throw new RegistryError(`Cannot authenticate to "${this.host}": the token endpoint sent no token`, { registry: this.host, code: 'AUTH_FAILED' });
    const issued = doc.issued_at ? Date.parse(doc.issued_at) : NaN;
    const base = Number.isNaN(issued) || issued > Date.now() ? Date.now() : issued;
    const lifetime = doc.expires_in && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    return { token, expiresAt: base + lifetime * 1000 };
  }
}
