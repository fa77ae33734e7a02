import { spawn } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { KilnError } from '../errors.js';

/**
 * Credentials as Docker keeps them: $DOCKER_CONFIG/config.json (default
 * ~/.docker/config.json) with `auths` (base64 "user:pass" or identitytoken),
 * `credsStore` (a default helper) and `credHelpers` (per registry).
 * Docker Hub's key is "https://index.docker.io/v1/".
 */
export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token ("identity token"); used instead of the password at the token endpoint. */
  identityToken?: string;
  /** A bearer token to send as is (registrytoken). */
  registryToken?: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

/** The key under `auths` / `credHelpers` for a registry host. */
export function authKey(host: string): string {
  return host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB_AUTH_KEY : host;
}

/** Strip scheme and path so "https://host:5000/v2/" matches "host:5000". */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}

async function readConfig(path: string): Promise<DockerConfigFile> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as DockerConfigFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new KilnError('DOCKER_CONFIG_INVALID', `Cannot read Docker config "${path}": ${(err as Error).message}`);
  }
}

/** Run `docker-credential-<helper> <action>` with `input` on stdin; 10 s limit. */
function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string, env: NodeJS.ProcessEnv): Promise<string> {
  const bin = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [action], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new KilnError('CREDENTIAL_HELPER', `Cannot run credential helper "${bin}": ${(e as NodeJS.ErrnoException).code ?? e.message}`, {
        hint: `Install ${bin} or remove "${helper}" from credsStore/credHelpers in ${dockerConfigPath(env)}.`,
      }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      // Helpers print "credentials not found in native keychain" for a missing entry.
      else if (action === 'get' && /not found/i.test(out + err)) resolve('');
      else reject(new KilnError('CREDENTIAL_HELPER', `Credential helper "${bin} ${action}" failed with exit code ${code}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

function fromEntry(e: AuthEntry): Credentials | undefined {
  const c: Credentials = {};
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) {
      c.username = decoded.slice(0, i);
      c.password = decoded.slice(i + 1);
    }
  }
  if (e.username) c.username = e.username;
  if (e.password) c.password = e.password;
  if (e.identitytoken) c.identityToken = e.identitytoken;
  if (e.registrytoken) c.registryToken = e.registrytoken;
  return Object.keys(c).length ? c : undefined;
}

/**
 * Credentials for `host` ("127.0.0.1:5000", "docker.io"), or undefined for anonymous.
 * Order as Docker: credHelpers[host], then credsStore, then auths.
 */
export async function loadCredentials(host: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const path = dockerConfigPath(env);
  const cfg = await readConfig(path);
  const key = authKey(host);
  const helper = cfg.credHelpers?.[key] ?? cfg.credHelpers?.[host] ?? cfg.credsStore;
  if (helper) {
    const out = await runHelper(helper, 'get', key, env);
    if (out.trim()) {
      const r = JSON.parse(out) as { Username?: string; Secret?: string };
      if (r.Username === '<token>') return { identityToken: r.Secret ?? '' };
      return { username: r.Username ?? '', password: r.Secret ?? '' };
    }
    if (cfg.credHelpers?.[key] ?? cfg.credHelpers?.[host]) return undefined;
  }
  const auths = cfg.auths ?? {};
  const exact = auths[key];
  if (exact) return fromEntry(exact);
  for (const [k, v] of Object.entries(auths)) if (keyHost(k) === keyHost(key)) return fromEntry(v);
  return undefined;
}

async function writeConfig(path: string, cfg: DockerConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.kiln-${process.pid}`;
  await writeFile(tmp, JSON.stringify(cfg, null, '\t') + '\n', { mode: 0o600 });
  await rename(tmp, path);
}

/** Save credentials as `docker login` does (through the helper when one is configured). */
export async function storeCredentials(host: string, creds: { username: string; password: string }, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = dockerConfigPath(env);
  const cfg = await readConfig(path);
  const key = authKey(host);
  const helper = cfg.credHelpers?.[key] ?? cfg.credsStore;
  if (helper) {
    await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password }), env);
    cfg.auths = { ...cfg.auths, [key]: {} };
  } else {
    cfg.auths = { ...cfg.auths, [key]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } };
  }
  await writeConfig(path, cfg);
  return path;
}

/** Forget credentials for `host`; false when there were none. */
export async function eraseCredentials(host: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const path = dockerConfigPath(env);
  const cfg = await readConfig(path);
  const key = authKey(host);
  const helper = cfg.credHelpers?.[key] ?? cfg.credsStore;
  let found = false;
  if (helper) {
    try {
      await runHelper(helper, 'erase', key, env);
      found = true;
    } catch {
      /* not stored there */
    }
  }
  for (const k of Object.keys(cfg.auths ?? {})) {
    if (k === key || keyHost(k) === keyHost(key)) {
      delete cfg.auths![k];
      found = true;
    }
  }
  if (found) await writeConfig(path, cfg);
  return found;
}
