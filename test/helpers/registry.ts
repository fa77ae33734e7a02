/**
 * A real OCI distribution registry for tests: Debian's `/usr/bin/docker-registry`
 * (distribution 2.8) on a free 127.0.0.1 port, plain HTTP, filesystem storage.
 *
 *   const reg = await startRegistry();            // no auth, delete enabled
 *   reg.host      // "127.0.0.1:PORT"  — use in image references: `${reg.host}/busybox:latest`
 *   reg.url       // "http://127.0.0.1:PORT"
 *   reg.storageDir
 *   await reg.stop();                             // kills the process; removes storage it created
 *
 * Options:
 *   extraConfig  YAML text appended at the top level of the generated config (e.g. an `auth:`
 *                section built by test/helpers/registry-auth.ts). It must not repeat a top-level
 *                key this helper writes (version, log, storage, http, health).
 *   httpConfig   YAML lines placed under `http:` (e.g. a `tls:` block), indented by the helper.
 *   storageDir   use (and keep) this directory instead of a fresh temp dir.
 *   readyPath    path polled until it answers (default "/v2/"; any HTTP status counts, so an
 *                auth-enabled registry answering 401 is ready).
 *
 * Never uses /etc/docker/registry/config.yml (Debian's enables htpasswd). The child runs under
 * `setpriv --pdeathsig KILL` when available, so it dies with the test process even on SIGKILL;
 * live registries are also killed on normal process exit. start() rejects (with the registry's
 * stderr) when the process exits early or /v2/ does not answer within `timeoutMs` (10 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StartRegistryOptions {
  extraConfig?: string;
  httpConfig?: string;
  storageDir?: string;
  readyPath?: string;
  timeoutMs?: number;
}

export interface TestRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "http://127.0.0.1:PORT" */
  url: string;
  port: number;
  storageDir: string;
  /** The generated config file (for debugging). */
  configPath: string;
  /** Kill the registry (SIGTERM, then SIGKILL after 2 s) and remove temp dirs. Idempotent. */
  stop(): Promise<void>;
}

export const registryBin = process.env.KILN_TEST_REGISTRY_BIN ?? '/usr/bin/docker-registry';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => (l.trim() ? by + l : l))
    .join('\n');
}

function registryConfig(port: number, storageDir: string, opts: StartRegistryOptions): string {
  let yaml = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storageDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: kiln-test-registry-secret',
  ].join('\n');
  if (opts.httpConfig) yaml += '\n' + indent(opts.httpConfig.replace(/\s+$/, ''), '  ');
  yaml += '\n';
  if (opts.extraConfig) yaml += opts.extraConfig.replace(/\s+$/, '') + '\n';
  return yaml;
}

function probe(port: number, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startOnce(opts: StartRegistryOptions): Promise<TestRegistry> {
  const work = await mkdtemp(join(tmpdir(), 'kiln-registry-'));
  const storageDir = opts.storageDir ?? join(work, 'storage');
  const port = await freePort();
  const configPath = join(work, 'config.yml');
  await writeFile(configPath, registryConfig(port, storageDir, opts));

  const argv = existsSync('/usr/bin/setpriv')
    ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', registryBin, 'serve', configPath]
    : [registryBin, 'serve', configPath];
  // Environment variables named REGISTRY_* override the config file: drop any inherited ones.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
  installExitHook();
  live.add(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-8192);
  });
  let exited: number | string | null | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.on('exit', (code, sig) => {
      exited = code ?? sig ?? 'unknown';
      live.delete(child);
      resolve();
    });
  });
  child.on('error', (err) => {
    stderr += `\nspawn error: ${err.message}`;
  });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (exited === undefined) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exitPromise;
      clearTimeout(t);
    }
    await rm(work, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const readyPath = opts.readyPath ?? '/v2/';
  while (Date.now() < deadline) {
    if (exited !== undefined) break;
    if (await probe(port, readyPath)) {
      return { host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}`, port, storageDir, configPath, stop };
    }
    await sleep(50);
  }
  const why = exited !== undefined ? `exited with ${exited}` : 'did not answer in time';
  await stop();
  throw new Error(`Cannot start test registry "${registryBin}" on 127.0.0.1:${port}: ${why}\n${stderr.trim()}`);
}

/** Start a registry; retries twice on a lost port race ("address already in use"). */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastErr = err;
      if (!/address already in use/i.test(String((err as Error).message))) throw err;
    }
  }
  throw lastErr;
}
