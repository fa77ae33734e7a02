/**
 * The image builders compared on each build scenario: kiln, buildah and BuildKit (dockerd).
 *
 * Modes:
 *  - cold:   fresh storage before every run (kiln: new KILN_ROOT; buildah: new --root/--runroot,
 *            no --layers; BuildKit: `docker builder prune -af` + image removal) — the base image is
 *            pulled from the local registry inside the timed run for every builder.
 *  - warm:   one untimed priming build, then N timed rebuilds with nothing changed
 *            (buildah with --layers).
 *  - change: primed like warm; before every timed run, `edit()` changes one context file.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { measure, mustRun, type CommandSpec } from './measure.js';
import { settle } from './settle.js';
import type { BenchEnv, Tool } from './types.js';

export type BuildMode = 'cold' | 'warm' | 'change';

export interface BuildSpec {
  /** Scenario name: used for tags and storage dirs. */
  name: string;
  contextDir: string;
  dockerfile: string;
  buildArgs: Record<string, string>;
  mode: BuildMode;
  /** For mode "change": edit one context file (called with a counter unique per call). */
  edit?: (n: number) => Promise<void>;
  /** --target, when the scenario builds one. */
  target?: string;
}

let editCounter = 0;

function buildArgFlags(args: Record<string, string>): string[] {
  return Object.entries(args).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
}

/** Fresh directory (removed first). */
async function fresh(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
}

/** Shared per-tool lifecycle for the three modes; `reset` wipes state, `spec` is the build. */
function lifecycle(
  env: BenchEnv,
  b: BuildSpec,
  name: string,
  kind: Tool['kind'],
  reset: () => Promise<void>,
  spec: () => CommandSpec,
): Tool {
  let primed = false;
  return {
    name,
    kind,
    async before() {
      if (b.mode === 'cold') {
        await reset();
        return settle(env.warmPaths);
      }
      if (!primed) {
        await reset();
        const r = await measure(spec());
        if (!r.ok) throw new Error(`priming build failed: ${r.error}`);
        primed = true;
      }
      if (b.mode === 'change') await b.edit!(++editCounter);
    },
    command: spec,
  };
}

export function kilnBuilder(env: BenchEnv, b: BuildSpec): Tool {
  const root = join(env.work, 'kiln-root', `${b.name}-${b.mode}`);
  const spec = (): CommandSpec => ({
    argv: [
      process.execPath,
      env.kilnBin,
      'build',
      '-t',
      `bench/${b.name}:latest`,
      '-f',
      join(b.contextDir, b.dockerfile),
      ...buildArgFlags(b.buildArgs),
      ...(b.target ? ['--target', b.target] : []),
      ...env.kilnBuildFlags,
      b.contextDir,
    ],
    env: kilnEnv(env, root),
    timeoutMs: env.timeoutMs,
  });
  return lifecycle(env, b, 'kiln', 'kiln', () => fresh(root), spec);
}

/** Environment for a kiln process with its own state dir and the local registry insecure. */
/**
 * kiln's environment. NODE_EXTRA_CA_CERTS is dropped unless --keep-node-ca-certs: set
 * machine-wide on some hosts (this VM points it at the system bundle), it makes every Node
 * start parse ~140 certificates (~65 ms here) — startup cost of the host's Node setup, not
 * of kiln, and nothing in the bench talks TLS (the registries are plain HTTP on loopback).
 */
export function kilnEnv(env: BenchEnv, root: string): NodeJS.ProcessEnv {
  const base = { ...process.env };
  if (!env.keepNodeCaCerts) delete base.NODE_EXTRA_CA_CERTS;
  return { ...base, KILN_ROOT: root, CONTAINERS_REGISTRIES_CONF: env.registriesConf, NO_COLOR: '1' };
}

/**
 * `buildah bud ARGS` as the bench runs it: vfs storage in `base`/root and `base`/runroot,
 * chroot isolation, the bench registries known as insecure.
 */
export function buildahBud(env: BenchEnv, base: string, args: string[]): CommandSpec {
  return {
    argv: ['buildah', '--root', join(base, 'root'), '--runroot', join(base, 'runroot'), '--storage-driver', 'vfs', 'bud', '--isolation', 'chroot', '--tls-verify=false', ...args],
    env: { ...process.env, CONTAINERS_REGISTRIES_CONF: env.registriesConf, BUILDAH_ISOLATION: 'chroot' },
    timeoutMs: env.timeoutMs,
  };
}

export function buildahBuilder(env: BenchEnv, b: BuildSpec): Tool {
  const base = join(env.work, 'buildah', `${b.name}-${b.mode}`);
  const spec = (): CommandSpec =>
    buildahBud(env, base, [
      `--layers=${b.mode === 'cold' ? 'false' : 'true'}`,
      '-t',
      `bench/${b.name}:latest`,
      '-f',
      join(b.contextDir, b.dockerfile),
      ...buildArgFlags(b.buildArgs),
      ...(b.target ? ['--target', b.target] : []),
      b.contextDir,
    ]);
  const reset = async () => {
    // vfs keeps plain directories; a chroot build leaves no mounts behind, but be safe.
    await mustRun({ argv: [`grep -o ' ${base}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l; true`], shell: true }).catch(() => undefined);
    await fresh(base);
  };
  const unavailable = hasBinary('buildah') ? undefined : 'buildah is not installed';
  return { ...lifecycle(env, b, 'buildah', 'peer', reset, spec), ...(unavailable ? { unavailable } : {}) };
}

export function buildkitBuilder(env: BenchEnv, b: BuildSpec): Tool {
  const d = env.dockerd;
  const tag = `bench/${b.name}-${b.mode}:latest`;
  const spec = (): CommandSpec => ({
    argv: [
      '/usr/bin/docker',
      'build',
      '--network',
      'none',
      '--progress',
      'plain',
      '-t',
      tag,
      '-f',
      join(b.contextDir, b.dockerfile),
      ...buildArgFlags(b.buildArgs),
      ...(b.target ? ['--target', b.target] : []),
      b.contextDir,
    ],
    env: d?.env,
    timeoutMs: env.timeoutMs,
  });
  const reset = async () => {
    if (!d) return;
    await d.docker(['image', 'rm', '-f', tag]).catch(() => undefined);
    await d.docker(['builder', 'prune', '-af']);
    await d.docker(['image', 'prune', '-af']);
  };
  const tool = lifecycle(env, b, 'buildkit', 'peer', reset, spec);
  if (!d) tool.unavailable = env.dockerdReason ?? 'dockerd not started';
  return tool;
}

export function allBuilders(env: BenchEnv, b: BuildSpec): Tool[] {
  return [kilnBuilder(env, b), buildahBuilder(env, b), buildkitBuilder(env, b)];
}

const binCache = new Map<string, boolean>();
export function hasBinary(name: string): boolean {
  if (!binCache.has(name)) {
    let ok = true;
    try {
      execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    } catch {
      ok = false;
    }
    binCache.set(name, ok);
  }
  return binCache.get(name)!;
}
