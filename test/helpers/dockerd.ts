/**
 * A private Docker engine (Debian's `dockerd`, package docker.io) for checking kiln's outputs
 * with `docker load` / `docker run` and as the BuildKit benchmark peer.
 *
 *   const d = await startDockerd();               // never throws for "not possible here"
 *   if (!d.ok) { console.log(d.reason); return; } // callers decide what unavailable means
 *   await d.docker(['load', '-i', tarPath]);      // runs /usr/bin/docker against this engine
 *   await d.stop();                               // SIGTERM, SIGKILL after 15 s, removes dirs
 *
 * The engine runs as root with its own data-root, exec-root, pidfile and unix socket in a temp
 * dir, `--exec-opt native.cgroupdriver=cgroupfs --iptables=false --ip-masq=false
 * --ip-forward=false --bridge=none` (so containers get no network: use `--network none` or
 * `--network host`; `docker build` needs `--network none` for RUN), an empty --config-file (never /etc/docker/daemon.json), and the managed
 * containerd it starts itself. 127.0.0.0/8 registries are insecure (plain HTTP) by default.
 *
 * Installing docker.io is the caller's choice (installDockerIo(); the benchmark does it; CI gets it from .ci/run,
 * tests never install it). The client used is /usr/bin/docker from docker.io (20.10: `DOCKER_BUILDKIT=1
 * docker build` uses the engine's built-in BuildKit without the buildx plugin), not whatever
 * `docker` comes first in PATH.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DOCKERD_BIN = process.env.KILN_DOCKERD_BIN ?? '/usr/sbin/dockerd';
export const DOCKER_CLI = process.env.KILN_DOCKER_CLI ?? '/usr/bin/docker';

export interface DockerResult {
  stdout: string;
  stderr: string;
}

export interface Dockerd {
  ok: true;
  /** "unix:///tmp/…/docker.sock" — set as DOCKER_HOST. */
  host: string;
  dataRoot: string;
  /** Environment for running the docker CLI against this engine (DOCKER_HOST, DOCKER_BUILDKIT=1, private DOCKER_CONFIG). */
  env: NodeJS.ProcessEnv;
  /** Run the docker CLI; rejects with stderr on a non-zero exit or after timeoutMs (default 10 min). */
  docker(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<DockerResult>;
  stop(): Promise<void>;
}

export interface DockerdUnavailable {
  ok: false;
  reason: string;
}

/** Why a private dockerd cannot start here, or undefined when it can be tried. */
export function dockerdUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'dockerd needs root (this process is not uid 0)';
  if (!existsSync(DOCKERD_BIN)) return `${DOCKERD_BIN} is missing (Debian package docker.io is not installed)`;
  if (!existsSync(DOCKER_CLI)) return `${DOCKER_CLI} is missing (Debian package docker.io is not installed)`;
  return undefined;
}

/** apt-get install docker.io (root only); resolves to an error message or undefined. Slow: bench path only. */
export function installDockerIo(timeoutMs = 600_000): Promise<string | undefined> {
  if (existsSync(DOCKERD_BIN) && existsSync(DOCKER_CLI)) return Promise.resolve(undefined);
  if (process.getuid?.() !== 0) return Promise.resolve('cannot install docker.io: not root');
  return new Promise((resolve) => {
    execFile(
      'apt-get',
      ['install', '-y', '-qq', '--no-install-recommends', 'docker.io'],
      { timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 << 20 },
      (err, _out, stderr) => resolve(err ? `apt-get install docker.io failed: ${(stderr || err.message).trim().split('\n').slice(-3).join(' ')}` : undefined),
    );
  });
}

function runDocker(env: NodeJS.ProcessEnv, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(DOCKER_CLI, args, { env, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${args.join(' ')} failed: ${(stderr || err.message).trim()}`));
      else resolve({ stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

const live = new Set<ChildProcess>();
let hooked = false;

/** Start a private dockerd; resolves { ok: false, reason } instead of throwing when it cannot run here. */
export async function startDockerd(opts: { timeoutMs?: number } = {}): Promise<Dockerd | DockerdUnavailable> {
  const why = dockerdUnavailableReason();
  if (why) return { ok: false, reason: why };
  // Keep socket paths short (unix socket paths are limited to 108 bytes).
  const work = await mkdtemp(join(tmpdir(), 'kd-'));
  const dataRoot = join(work, 'data');
  const execRoot = join(work, 'exec');
  const sock = join(work, 'docker.sock');
  const configFile = join(work, 'daemon.json');
  await writeFile(configFile, '{}\n');
  const logFile = join(work, 'dockerd.log');
  const argv = [
    DOCKERD_BIN,
    '--config-file', configFile,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', join(work, 'docker.pid'),
    '-H', `unix://${sock}`,
    '--exec-opt', 'native.cgroupdriver=cgroupfs',
    '--iptables=false',
    '--ip-masq=false',
    '--ip-forward=false',
    '--bridge=none',
    '--userland-proxy=false',
    // dockerd 20.10 uses a running system containerd (/run/containerd) instead of starting
    // its own; own namespaces keep this engine's containers apart from a system dockerd's.
    '--containerd-namespace', 'kiln-test',
    '--containerd-plugins-namespace', 'kiln-test-plugins',
  ];
  const full = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'TERM', ...argv] : argv;
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(logFile, 'a');
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(child);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  let exited: string | undefined;
  const exitP = new Promise<void>((r) =>
    child.on('exit', (code, sig) => {
      exited = String(code ?? sig);
      live.delete(child);
      r();
    }),
  );
  child.on('error', (e) => (exited = `spawn error ${e.message}`));

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: `unix://${sock}`,
    DOCKER_BUILDKIT: '1',
    DOCKER_CONFIG: join(work, 'client-config'),
    DOCKER_CLI_HINTS: 'false',
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (exited === undefined) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exitP;
      clearTimeout(t);
    }
    // Leftover mounts (overlay, shm) under data/exec roots would make rm fail: unmount first.
    await new Promise<void>((r) =>
      execFile('sh', ['-c', `grep -o ' ${work}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l`], () => r()),
    );
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (Date.now() < deadline && exited === undefined) {
    try {
      await runDocker(env, ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5000 });
      return { ok: true, host: env.DOCKER_HOST!, dataRoot, env, docker: (a, o) => runDocker(env, a, o), stop };
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const log = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
  await stop();
  return { ok: false, reason: `dockerd did not start (${exited ? 'exited ' + exited : 'timeout'}):\n${log}` };
}
