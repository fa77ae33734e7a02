import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { HostError } from '../errors.js';
import { cachedProbe, fileIdentity } from '../util/host-probe-cache.js';
import { prepareRun, type PreparedMount } from './prepare-run.js';
import { DEFAULT_CAPS, envFix, HELPER_DIR, helperArgv, splitHostEnv, helperMounts, setgroupsAllowed, setprivHelper } from './setpriv-helper.js';
import { spawnSandbox } from './spawn-sandbox.js';
import type { Executor, RunRequest } from './types.js';
import { which } from '../util/which.js';

const execFileP = promisify(execFile);
const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** /proc entries hidden from RUN (as docker's masked paths). */
const MASKED_PROC_FILES = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/proc/latency_stats'];

/**
 * bubblewrap executor. kiln is root (really, or in its build user namespace),
 * so bwrap runs without --unshare-user: the rootfs keeps its real ownership.
 * New pid, ipc, uts, cgroup (and, for network=none, net) namespaces; a fresh
 * /proc; bwrap's minimal /dev; the process switches to its USER through the
 * setpriv helper. --die-with-parent plus the pid namespace means killing bwrap
 * kills every process of the step.
 */
export class BwrapExecutor implements Executor {
  readonly name = 'bwrap' as const;
  readonly isolated = true;
  readonly #bin: string;

  constructor(bin = which('bwrap')) {
    if (!bin) {
      throw new HostError('Cannot use bwrap isolation: bubblewrap is not installed', {
        code: 'HOST_NO_BWRAP',
        hint: 'Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) or pass --isolation runc|chroot.',
      });
    }
    this.#bin = bin;
  }

  async run(req: RunRequest, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const version = await bwrapVersion(this.#bin);
    if (versionBelow(version, [0, 5, 0])) {
      throw new HostError(`Cannot use bwrap isolation: bubblewrap ${version.join('.')} is too old (kiln needs 0.5 or later for --clearenv and --perms)`, {
        code: 'HOST_BWRAP_OLD',
        hint: 'Upgrade bubblewrap, or pass --isolation runc|chroot.',
      });
    }
    const sized = req.mounts.find((m) => m.type === 'tmpfs' && m.sizeBytes !== undefined);
    if (sized && versionBelow(version, [0, 8, 0])) {
      throw new HostError(`Cannot mount a tmpfs of a given size at "${sized.target}": bubblewrap ${version.join('.')} has no --size (0.8 or later)`, {
        code: 'HOST_BWRAP_OLD',
        hint: 'Upgrade bubblewrap, drop size= from the tmpfs mount, or pass --isolation runc.',
      });
    }
    const helper = await setprivHelper();
    const prep = await prepareRun(req);
    try {
      // The step's environment reaches bwrap through fd 3, never its own environment or argv:
      // bwrap clears its environment and sets the step's just before it executes the step.
      // Host-special variables (LD_PRELOAD …) are held back so that the helpers don't load them, and restored by env(1) last.
      const { shellEnv: safeEnv, held } = splitHostEnv(prep.env);
      const envArgs = ['--clearenv', ...Object.entries(safeEnv).flatMap(([k, v]) => ['--setenv', k, v])];
      const args = [
        '--args', '3',
        '--die-with-parent', '--new-session',
        '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
        ...(req.network === 'none' ? ['--unshare-net'] : []),
        '--hostname', prep.hostname,
        '--cap-drop', 'ALL', ...DEFAULT_CAPS.flatMap((c) => ['--cap-add', `CAP_${c.toUpperCase()}`]),
        '--bind', prep.rootfs, '/',
        '--proc', '/proc',
        '--dev', '/dev',
        ...MASKED_PROC_FILES.filter((p) => existsSync(p)).flatMap((p) => ['--ro-bind', '/dev/null', p]),
        '--perms', '0755', '--dir', HELPER_DIR,
        ...[...prep.mounts, ...helperMounts(helper)].flatMap(mountArgs),
        '--chdir', prep.cwd,
        '--',
        ...helperArgv(helper, req.user, req.args, { canSetgroups: setgroupsAllowed(), envFix: envFix(prep.env, held) }),
      ];
      const o: Parameters<typeof spawnSandbox>[2] = {
        argv: req.args,
        env: { PATH: HOST_PATH },
        argsData: Buffer.from(envArgs.map((a) => a + '\0').join('')),
        setupErrorPrefix: 'bwrap: ',
      };
      if (req.display !== undefined) o.display = req.display;
      if (req.onOutput) o.onOutput = req.onOutput;
      if (opts.signal) o.signal = opts.signal;
      await spawnSandbox(this.#bin, args, o);
    } finally {
      await prep.cleanup();
    }
  }
}

function mountArgs(m: PreparedMount): string[] {
  if (m.kind === 'tmpfs') return [...(m.sizeBytes !== undefined ? ['--size', String(m.sizeBytes)] : []), '--tmpfs', m.dest];
  return [m.readonly ? '--ro-bind' : '--bind', m.source, m.dest];
}

let versionCache: Promise<number[]> | undefined;

/** `bwrap --version` as [major, minor, patch] ([0, 0, 0] when unreadable). */
export function bwrapVersion(bin: string): Promise<number[]> {
  const probe = () =>
    execFileP(bin, ['--version'], { timeout: 10_000 }).then(
      ({ stdout }) => (/(\d+)\.(\d+)(?:\.(\d+))?/.exec(stdout) ?? ['', '0', '0', '0']).slice(1, 4).map((x) => Number(x ?? 0)),
      () => [0, 0, 0],
    );
  versionCache ??= cachedProbe('bwrap-version', [fileIdentity(bin)], probe, { keep: (v) => v.some((x) => x > 0) });
  return versionCache;
}

export function versionBelow(v: number[], min: number[]): boolean {
  for (let i = 0; i < 3; i++) {
    if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) < min[i]!;
  }
  return false;
}
