import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Agent, request } from './undici-lite.js';
import { DigestMismatchError, KilnError, RegistryError, redactUrl } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, parseDigest, sha256Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { Authenticator } from './authenticator.js';
import { ProxyDispatcher, proxySettings } from './proxy-dispatcher.js';
import { type Credentials, loadCredentials } from './docker-config.js';
import { describeErrorBody, header, isRetryableNetworkError, repositoryScope, retryAfterMs, sleep } from './http-util.js';
import type { ImageReference } from '../oci/reference.js';
import { emptyRegistriesConf, type Endpoint, type RegistriesConf, resolveEndpoints } from './registries-conf.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

/** Accept header for manifests: OCI and Docker schema2, single and multi-platform. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest].join(', ');
/** Manifests larger than this are refused (the distribution spec's limit is 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface RegistryClientOptions {
  /** registries.conf (mirrors, insecure, blocked); default: none. */
  registriesConf?: RegistriesConf;
  /** Hosts allowed over plain HTTP / unverified TLS (`--insecure-registry`). */
  insecureRegistries?: string[];
  /** Loopback registries (127.0.0.0/8, localhost, ::1) are insecure by default as in Docker; false turns that off. */
  loopbackInsecure?: boolean;
  /** Credentials lookup; default: Docker's config.json ($DOCKER_CONFIG) for the host. */
  credentials?: (host: string) => Promise<Credentials | undefined>;
  env?: NodeJS.ProcessEnv;
  /** Attempts after the first for retryable failures (default 4). */
  retries?: number;
  /** First backoff delay (default 200 ms), doubled per attempt with jitter. */
  retryBaseMs?: number;
  /** Longest Retry-After honoured (default 60 s). */
  maxRetryAfterMs?: number;
  /** Debug log sink: one line per request, never a credential. */
  log?: (line: string) => void;
  userAgent?: string;
  /** Connections per origin (default 8). */
  connections?: number;
}

export interface RequestSpec {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** Path below the origin ("/v2/…") or an absolute URL (upload Location). */
  path: string;
  scopes: string[];
  headers?: Record<string, string>;
  /** A fresh body per attempt (so retries can resend). */
  body?: () => Buffer | Readable | string;
  /** Statuses that are success for this call; any other is an error (after retries). */
  expect: number[];
  /** Failed action for messages: `Cannot ${action}`. */
  action: string;
  /** Retry 5xx/429/resets at this level (default true). */
  retry?: boolean;
  signal?: AbortSignal;
  repository?: string;
}

interface HostState {
  scheme: 'https' | 'http';
  pinged: Promise<void> | undefined;
  auth: Authenticator;
}

const secureAgentDefaults = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000 };

/**
 * An OCI distribution client for any number of registry hosts. One keep-alive
 * undici Agent per TLS mode; per host: the scheme found by the /v2/ ping and an
 * Authenticator. All requests retry resets, 5xx and 429 (Retry-After honoured)
 * with exponential backoff, re-authenticate once on 401 (token refresh / scope
 * escalation), and follow redirects without forwarding Authorization.
 */
/**
 * TLS for insecure registries: certificates are not verified, so no CA list is
 * needed. An empty one spares Node from parsing its ~140 bundled roots (~30 ms
 * of CPU) on the first TLS attempt, which for a plain-HTTP registry fails anyway.
 */
const UNVERIFIED_TLS = { rejectUnauthorized: false, ca: [] as string[] };

export class RegistryClient {
  readonly conf: RegistriesConf;
  readonly options: RegistryClientOptions;
  private readonly hosts = new Map<string, HostState>();
  private readonly agent: Dispatcher;
  private readonly insecureAgent: Dispatcher;
  readonly log: (line: string) => void;
  private readonly userAgent: string;

  constructor(options: RegistryClientOptions = {}) {
    this.options = options;
    this.conf = options.registriesConf ?? emptyRegistriesConf();
    this.log = options.log ?? (() => undefined);
    this.userAgent = options.userAgent ?? 'kiln/0.1';
    const connections = options.connections ?? 8;
    const proxy = proxySettings(options.env ?? process.env);
    if (proxy) {
      // As docker and skopeo do: HTTP(S)_PROXY and NO_PROXY from the environment; loopback is never proxied.
      this.agent = new ProxyDispatcher(proxy, { ...secureAgentDefaults, connections });
      this.insecureAgent = new ProxyDispatcher(proxy, { ...secureAgentDefaults, connections }, UNVERIFIED_TLS);
      this.log(`using proxy settings from the environment (HTTP_PROXY ${proxy.httpProxy ? 'set' : 'unset'}, HTTPS_PROXY ${proxy.httpsProxy ? 'set' : 'unset'}, NO_PROXY "${proxy.noProxy}")`);
    } else {
      this.agent = new Agent({ ...secureAgentDefaults, connections });
      this.insecureAgent = new Agent({ ...secureAgentDefaults, connections, connect: UNVERIFIED_TLS });
    }
  }

  /**
   * Where to talk to for `ref`: mirrors first (pulls only), then the primary location, with
   * this client's insecure settings applied. Blocked names throw RegistryError.
   */
  endpoints(ref: ImageReference, opts: { forPush?: boolean } = {}): Endpoint[] {
    return resolveEndpoints(this.conf, ref.domain, ref.path, {
      insecureRegistries: this.options.insecureRegistries ?? [],
      loopbackInsecure: this.options.loopbackInsecure !== false,
      forPush: opts.forPush === true,
      byDigest: ref.digest !== undefined,
    });
  }

  /** Close idle connections. The client must not be used afterwards. */
  async close(): Promise<void> {
    await Promise.all([this.agent.close(), this.insecureAgent.close()]);
  }

  private state(ep: Pick<Endpoint, 'host' | 'insecure'>): HostState {
    const key = `${ep.host}|${ep.insecure}`;
    let s = this.hosts.get(key);
    if (!s) {
      const creds = this.options.credentials ?? ((h: string) => loadCredentials(h, this.options.env));
      s = {
        scheme: 'https',
        pinged: undefined,
        auth: new Authenticator(ep.host, () => creds(ep.host === 'registry-1.docker.io' ? 'docker.io' : ep.host), ep.insecure ? this.insecureAgent : this.agent, this.log, this.userAgent),
      };
      this.hosts.set(key, s);
    }
    return s;
  }

  private dispatcherFor(ep: Pick<Endpoint, 'insecure'>): Dispatcher {
    return ep.insecure ? this.insecureAgent : this.agent;
  }

  /**
   * GET /v2/: learn the scheme (https, or http when the host is insecure and TLS
   * fails) and the auth challenge. Done once per host; concurrent callers share it.
   */
  ping(ep: Pick<Endpoint, 'host' | 'insecure'>, signal?: AbortSignal): Promise<void> {
    const s = this.state(ep);
    s.pinged ??= this.doPing(ep, s, signal).catch((err) => {
      s.pinged = undefined;
      throw err;
    });
    return s.pinged;
  }

  private async doPing(ep: Pick<Endpoint, 'host' | 'insecure'>, s: HostState, signal?: AbortSignal): Promise<void> {
    const schemes: Array<'https' | 'http'> = ep.insecure ? ['https', 'http'] : ['https'];
    let lastErr: unknown;
    for (const scheme of schemes) {
      const url = `${scheme}://${ep.host}/v2/`;
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await request(url, { method: 'GET', headers: { 'user-agent': this.userAgent }, dispatcher: this.dispatcherFor(ep), signal: signal ?? null });
          await res.body.dump();
          this.log(`GET ${url} → ${res.statusCode}`);
          if (res.statusCode === 401) s.auth.setChallenge(parseWwwAuthenticate(res.headers['www-authenticate']));
          else if ((res.statusCode >= 500 || res.statusCode === 429) && attempt < this.retries) {
            await this.backoff(attempt, header(res.headers, 'retry-after'), signal);
            continue;
          } else if (res.statusCode !== 200) {
            throw new RegistryError(`Cannot reach registry "${ep.host}": GET /v2/ answered ${res.statusCode}`, { registry: ep.host, url, method: 'GET', status: res.statusCode, hint: 'Is this an OCI distribution registry?' });
          }
          s.scheme = scheme;
          return;
        } catch (err) {
          if (err instanceof KilnError) throw err;
          lastErr = err;
          // A TLS failure against a plain-HTTP server: try the next scheme right away.
          const tlsish = /EPROTO|wrong version number|SSL|TLS|certificate/i.test(`${(err as { code?: string }).code} ${(err as Error).message}`);
          if (!tlsish && isRetryableNetworkError(err) && attempt < this.retries) {
            await this.backoff(attempt, undefined, signal);
            continue;
          }
          break;
        }
      }
    }
    const why = (lastErr as { code?: string })?.code ?? (lastErr as Error)?.message ?? 'unknown error';
    throw new RegistryError(`Cannot reach registry "${ep.host}": ${why}`, {
      registry: ep.host,
      code: 'REGISTRY_UNREACHABLE',
      cause: lastErr,
      hint: ep.insecure ? undefined : `If "${ep.host}" serves plain HTTP or a self-signed certificate, pass --insecure-registry ${ep.host} or mark it insecure in registries.conf.`,
    });
  }

  private get retries(): number {
    return this.options.retries ?? 4;
  }

  /** Wait before retry `attempt` (0-based): Retry-After when given, else exponential backoff with jitter. */
  async backoff(attempt: number, retryAfter?: string, signal?: AbortSignal): Promise<void> {
    const base = this.options.retryBaseMs ?? 200;
    const ra = retryAfterMs(retryAfter);
    const ms = ra !== undefined ? Math.min(ra, this.options.maxRetryAfterMs ?? 60_000) : base * 2 ** attempt * (0.75 + Math.random() * 0.5);
    this.log(`  retrying in ${Math.round(ms)} ms`);
    await sleep(ms, signal);
  }

  baseUrl(ep: Pick<Endpoint, 'host' | 'insecure'>): string {
    return `${this.state(ep).scheme}://${ep.host}`;
  }

  /**
   * One registry call with auth, retries and redirects. Resolves with the response
   * whose status is in `spec.expect`; the caller must consume or destroy its body.
   * Errors are RegistryError (status, code from the registry's error body).
   */
  async send(ep: Pick<Endpoint, 'host' | 'insecure'>, spec: RequestSpec): Promise<Dispatcher.ResponseData> {
    await this.ping(ep, spec.signal);
    const s = this.state(ep);
    let scopes = spec.scopes;
    let reauthed = false;
    const canRetry = spec.retry !== false;
    for (let attempt = 0; ; attempt++) {
      let url = /^https?:\/\//.test(spec.path) ? spec.path : `${s.scheme}://${ep.host}${spec.path}`;
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...spec.headers };
      // Credentials go only to the registry itself, never to another host named by a Location.
      if (new URL(url).host === new URL(`${s.scheme}://${ep.host}`).host) {
        const authz = await s.auth.authorization(scopes, spec.signal);
        if (authz) headers.authorization = authz;
      }
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, { method: spec.method, headers, body: spec.body ? spec.body() : null, dispatcher: this.dispatcherFor(ep), signal: spec.signal ?? null });
        this.log(`${spec.method} ${redactUrl(url)} → ${res.statusCode}`);
        // Redirects (blob storage): follow without Authorization, up to 5 hops.
        for (let hop = 0; res.statusCode >= 300 && res.statusCode < 400 && header(res.headers, 'location') && !spec.expect.includes(res.statusCode); hop++) {
          if (hop === 5) break;
          const next = new URL(header(res.headers, 'location')!, url).toString();
          await res.body.dump();
          url = next;
          const h2 = { ...headers };
          delete h2.authorization;
          res = await request(url, { method: spec.method, headers: h2, body: spec.body && spec.method !== 'GET' && spec.method !== 'HEAD' ? spec.body() : null, dispatcher: this.dispatcherFor(ep), signal: spec.signal ?? null });
          this.log(`${spec.method} ${redactUrl(url)} (redirect) → ${res.statusCode}`);
        }
      } catch (err) {
        if (canRetry && isRetryableNetworkError(err) && attempt < this.retries && !spec.signal?.aborted) {
          this.log(`  ${spec.method} ${redactUrl(url)} failed: ${(err as { code?: string }).code ?? (err as Error).message}`);
          await this.backoff(attempt, undefined, spec.signal);
          continue;
        }
        throw new RegistryError(`Cannot ${spec.action}: ${(err as { code?: string }).code ?? (err as Error).message}`, {
          registry: ep.host, repository: spec.repository, method: spec.method, url, code: 'REGISTRY_NETWORK', cause: err,
        });
      }
      if (spec.expect.includes(res.statusCode)) return res;
      if (res.statusCode === 401 && !reauthed) {
        reauthed = true;
        const asked = s.auth.setChallenge(parseWwwAuthenticate(res.headers['www-authenticate']));
        await res.body.dump();
        s.auth.invalidate(scopes);
        scopes = s.auth.escalate(scopes, asked);
        attempt--;
        continue;
      }
      const retryable = res.statusCode === 429 || res.statusCode === 500 || res.statusCode === 502 || res.statusCode === 503 || res.statusCode === 504 || res.statusCode === 408;
      if (canRetry && retryable && attempt < this.retries) {
        const ra = header(res.headers, 'retry-after');
        await res.body.dump();
        await this.backoff(attempt, ra, spec.signal);
        continue;
      }
      const text = spec.method === 'HEAD' ? '' : await res.body.text().catch(() => '');
      if (spec.method === 'HEAD') await res.body.dump();
      throw this.statusError(ep, spec, url, res.statusCode, text);
    }
  }

  private statusError(ep: Pick<Endpoint, 'host'>, spec: RequestSpec, url: string, status: number, text: string): RegistryError {
    const detail = describeErrorBody(text) ?? (status === 401 ? 'UNAUTHORIZED: authentication required' : status === 404 ? 'NOT_FOUND' : status === 403 ? 'DENIED' : `HTTP ${status}`);
    const code = status === 401 ? 'UNAUTHORIZED' : status === 403 ? 'DENIED' : status === 404 ? 'NOT_FOUND' : status === 429 ? 'TOO_MANY_REQUESTS' : 'REGISTRY_ERROR';
    const hint =
      status === 401 ? `Log in with "kiln login ${ep.host}" (credentials are read from Docker's config.json).`
      : status === 403 ? 'The credentials in use may not push or pull this repository.'
      : undefined;
    return new RegistryError(`Cannot ${spec.action}: ${status} ${detail}`, { registry: ep.host, repository: spec.repository, method: spec.method, url, status, code, hint });
  }

  // ---------------------------------------------------------------- manifests

  /**
   * GET a manifest or index by tag or digest; returns its exact bytes and a
   * descriptor whose digest is computed over them (checked against a requested
   * digest and against Docker-Content-Digest).
   */
  async getManifest(ep: Endpoint, reference: string, signal?: AbortSignal): Promise<{ descriptor: Descriptor; raw: Buffer }> {
    const name = `${ep.host}/${ep.repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    const res = await this.send(ep, {
      method: 'GET', path: `/v2/${ep.repository}/manifests/${reference}`, scopes: [repositoryScope(ep.repository, ['pull'])],
      headers: { accept: MANIFEST_ACCEPT }, expect: [200], action: `fetch manifest "${name}"`, signal, repository: ep.repository,
    });
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new RegistryError(`Cannot fetch manifest "${name}": larger than ${MAX_MANIFEST_BYTES} bytes`, { registry: ep.host, repository: ep.repository, code: 'MANIFEST_TOO_LARGE' });
      }
      chunks.push(c as Buffer);
    }
    const raw = Buffer.concat(chunks);
    const digest = sha256Digest(raw);
    if (reference.includes(':') && reference !== digest) {
      throw new DigestMismatchError(reference, digest, raw.length, { what: `manifest "${name}"` });
    }
    const sent = header(res.headers, 'docker-content-digest');
    if (sent && sent.startsWith('sha256:') && sent !== digest) throw new DigestMismatchError(sent, digest, raw.length, { what: `manifest "${name}"` });
    const doc = JSON.parse(raw.toString('utf8')) as { mediaType?: string; manifests?: unknown };
    const ct = header(res.headers, 'content-type')?.split(';')[0]?.trim();
    const mediaType = doc.mediaType ?? (ct && ct !== 'application/json' ? ct : doc.manifests ? MediaType.OciIndex : MediaType.OciManifest);
    return { descriptor: { mediaType, digest, size: raw.length }, raw };
  }

  /** HEAD a manifest: its descriptor (digest from Docker-Content-Digest), or undefined when 404. */
  async headManifest(ep: Endpoint, reference: string, signal?: AbortSignal): Promise<Descriptor | undefined> {
    const res = await this.send(ep, {
      method: 'HEAD', path: `/v2/${ep.repository}/manifests/${reference}`, scopes: [repositoryScope(ep.repository, ['pull'])],
      headers: { accept: MANIFEST_ACCEPT }, expect: [200, 404], action: `check manifest "${ep.host}/${ep.repository}:${reference}"`, signal, repository: ep.repository,
    });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    const digest = header(res.headers, 'docker-content-digest');
    const size = Number(header(res.headers, 'content-length'));
    const mediaType = header(res.headers, 'content-type')?.split(';')[0]?.trim();
    if (!digest || !mediaType || !Number.isFinite(size)) {
      const got = await this.getManifest(ep, reference, signal);
      return got.descriptor;
    }
    return { mediaType, digest: parseDigest(digest), size };
  }

  /** PUT manifest bytes exactly as given, with their media type, under a tag or digest. */
  async putManifest(ep: Endpoint, reference: string, raw: Buffer, mediaType: string, signal?: AbortSignal): Promise<Digest> {
    const res = await this.send(ep, {
      method: 'PUT', path: `/v2/${ep.repository}/manifests/${reference}`, scopes: [repositoryScope(ep.repository, ['pull', 'push'])],
      headers: { 'content-type': mediaType, 'content-length': String(raw.length) }, body: () => raw,
      expect: [200, 201, 202], action: `push manifest "${ep.host}/${ep.repository}:${reference}"`, signal, repository: ep.repository,
    });
    await res.body.dump();
    const digest = sha256Digest(raw);
    const sent = header(res.headers, 'docker-content-digest');
    if (sent && sent !== digest) throw new DigestMismatchError(digest, sent, raw.length, { what: 'manifest accepted by the registry' });
    return digest;
  }

  // ---------------------------------------------------------------- blobs

  /** HEAD a blob: true when the repository has it. */
  async blobExists(ep: Endpoint, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    const res = await this.send(ep, {
      method: 'HEAD', path: `/v2/${ep.repository}/blobs/${digest}`, scopes: [repositoryScope(ep.repository, ['pull', 'push'])],
      expect: [200, 404], action: `check blob "${digest}" in "${ep.host}/${ep.repository}"`, signal, repository: ep.repository,
    });
    await res.body.dump();
    return res.statusCode === 200;
  }

  /**
   * GET a blob from byte `offset` (Range). Resolves with the response (200 or 206);
   * the caller streams and must consume or destroy the body.
   */
  async getBlob(ep: Endpoint, digest: Digest, offset = 0, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    return this.send(ep, {
      method: 'GET', path: `/v2/${ep.repository}/blobs/${digest}`, scopes: [repositoryScope(ep.repository, ['pull'])],
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, expect: [200, 206], action: `fetch blob "${digest}" from "${ep.host}/${ep.repository}"`, signal, repository: ep.repository,
    });
  }

  /**
   * Try a cross-repository mount. Returns true when mounted (201); otherwise the
   * upload session URL the registry opened instead (202), to upload into.
   */
  async mountBlob(ep: Endpoint, digest: Digest, fromRepository: string, signal?: AbortSignal): Promise<true | string> {
    const q = new URLSearchParams({ mount: digest, from: fromRepository });
    const res = await this.send(ep, {
      method: 'POST', path: `/v2/${ep.repository}/blobs/uploads/?${q}`,
      scopes: [repositoryScope(ep.repository, ['pull', 'push']), repositoryScope(fromRepository, ['pull'])],
      headers: { 'content-length': '0' }, expect: [201, 202], action: `mount blob "${digest}" into "${ep.host}/${ep.repository}"`, signal, repository: ep.repository,
    });
    await res.body.dump();
    if (res.statusCode === 201) return true;
    return this.location(ep, res, 'mount');
  }

  private location(ep: Endpoint, res: Dispatcher.ResponseData, what: string): string {
    const loc = header(res.headers, 'location');
    if (!loc) throw new RegistryError(`Cannot upload to "${ep.host}/${ep.repository}": the registry sent no Location after ${what}`, { registry: ep.host, repository: ep.repository, code: 'REGISTRY_PROTOCOL' });
    return new URL(loc, this.baseUrl(ep) + '/').toString();
  }

  /** GET an upload session's status: the next byte offset it expects and its current Location. */
  async uploadStatus(ep: Endpoint, location: string, what: string, signal?: AbortSignal): Promise<{ offset: number; location: string }> {
    const res = await this.send(ep, {
      method: 'GET', path: location, scopes: [repositoryScope(ep.repository, ['pull', 'push'])], expect: [204], action: `${what} (upload status)`, signal, repository: ep.repository,
    });
    await res.body.dump();
    const m = /^(?:bytes=)?0-(\d+)$/.exec(header(res.headers, 'range') ?? '');
    const offset = m ? Number(m[1]) + 1 : 0;
    return { offset, location: header(res.headers, 'location') ? this.location(ep, res, 'GET') : location };
  }

  /** Open an upload session: the URL to PATCH/PUT to. */
  async startUpload(ep: Endpoint, signal?: AbortSignal): Promise<string> {
    const res = await this.send(ep, {
      method: 'POST', path: `/v2/${ep.repository}/blobs/uploads/`, scopes: [repositoryScope(ep.repository, ['pull', 'push'])],
      headers: { 'content-length': '0' }, expect: [202], action: `start a blob upload to "${ep.host}/${ep.repository}"`, signal, repository: ep.repository,
    });
    await res.body.dump();
    return this.location(ep, res, 'POST');
  }

  /**
   * Upload one blob into session `location`: a single PUT when `size <= monolithicMax`,
   * otherwise PATCH chunks of `chunkSize` (following each new Location) and a closing
   * PUT. `open(start, end)` gives a fresh stream of bytes [start, end] (inclusive).
   * A failed chunk is resumed from the offset the session reports (GET status); other
   * failures are left to the caller, which restarts the whole upload.
   */
  async uploadBlob(
    ep: Endpoint,
    location: string,
    desc: { digest: Digest; size: number },
    open: (start: number, end: number) => Readable,
    opts: { chunkSize?: number; monolithicMax?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    const chunkSize = opts.chunkSize ?? 4 * 1024 * 1024;
    const monolithicMax = opts.monolithicMax ?? chunkSize;
    const scopes = [repositoryScope(ep.repository, ['pull', 'push'])];
    const what = `upload blob "${desc.digest}" to "${ep.host}/${ep.repository}"`;
    const withDigest = (loc: string) => {
      const u = new URL(loc);
      u.searchParams.set('digest', desc.digest);
      return u.toString();
    };
    if (desc.size <= monolithicMax) {
      const res = await this.send(ep, {
        method: 'PUT', path: withDigest(location), scopes, retry: false, signal: opts.signal, repository: ep.repository,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: () => (desc.size === 0 ? Buffer.alloc(0) : open(0, desc.size - 1)), expect: [201, 204], action: what,
      });
      await res.body.dump();
      return;
    }
    let loc = location;
    let failures = 0;
    for (let start = 0; start < desc.size; ) {
      const end = Math.min(desc.size, start + chunkSize) - 1;
      try {
        const res = await this.send(ep, {
          method: 'PATCH', path: loc, scopes, retry: false, signal: opts.signal, repository: ep.repository,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1), 'content-range': `${start}-${end}` },
          body: () => open(start, end), expect: [202], action: what,
        });
        await res.body.dump();
        loc = this.location(ep, res, 'PATCH');
        start = end + 1;
      } catch (err) {
        // A dropped or failed chunk: ask the session how far it got and continue from there.
        const status = (err as RegistryError).status;
        const resumable = err instanceof RegistryError && (err.code === 'REGISTRY_NETWORK' || (status !== undefined && (status >= 500 || status === 429)));
        if (!resumable || ++failures > this.retries || opts.signal?.aborted) throw err;
        this.log(`  ${what}: chunk ${start}-${end} failed (${(err as Error).message}); asking the registry how much it has`);
        await this.backoff(failures - 1, undefined, opts.signal);
        const st = await this.uploadStatus(ep, loc, what, opts.signal);
        loc = st.location;
        start = st.offset;
      }
    }
    const res = await this.send(ep, {
      method: 'PUT', path: withDigest(loc), scopes, retry: false, signal: opts.signal, repository: ep.repository,
      headers: { 'content-length': '0' }, expect: [201, 204], action: what,
    });
    await res.body.dump();
  }
}
