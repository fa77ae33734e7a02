import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HostError } from '../errors.js';
import { runChrootWithoutNamespaces } from './chroot-plain.js';
import { prepareRun, type PreparedMount } from './prepare-run.js';
import { runtimeDir } from './runtime-files.js';
import { envFix, helperArgv, helperMounts, setgroupsAllowed, setprivHelper, splitHostEnv } from './setpriv-helper.js';
import { spawnSandbox } from './spawn-sandbox.js';
import type { Executor, RunRequest } from './types.js';
import { which } from '../util/which.js';

const execFileP = promisify(execFile);

/** The namespaces unshare(1) can create on this host, best first. */
const NS_SETS = [
  ['--mount', '--pid', '--fork', '--kill-child', '--ipc', '--uts'],
  ['--mount', '--pid', '--fork', '--kill-child'],
  ['--mount'],
];

let probed: Promise<{ ns: string[]; net: boolean }> | undefined;

/**
 * Which namespaces unshare can create here (cached for the process); ns = []
 * when not even a mount namespace (the step then runs by plain chroot, see
 * chroot-plain.ts), a HostError when kiln cannot chroot either.
 */
export function probeChrootNamespaces(unshare: string): Promise<{ ns: string[]; net: boolean }> {
  probed ??= (async () => {
    for (const ns of NS_SETS) {
      try {
        await execFileP(unshare, [...ns, '--', 'true'], { timeout: 10_000 });
        const net = await execFileP(unshare, [...ns, '--net', '--', 'true'], { timeout: 10_000 }).then(
          () => true,
          () => false,
        );
        return { ns, net };
      } catch {
        // try fewer namespaces
      }
    }
    const chroot = which('chroot');
    const canChroot = chroot ? await execFileP(chroot, ['/', 'true'], { timeout: 10_000 }).then(() => true, () => false) : false;
    if (canChroot) return { ns: [], net: false };
    throw new HostError('Cannot use chroot isolation: kiln can neither create a mount namespace nor chroot here', {
      code: 'HOST_NO_CHROOT',
      hint: 'Run kiln as root inside the container (docker keeps CAP_SYS_CHROOT by default), or allow user namespaces.',
    });
  })();
  return probed;
}

/**
 * chroot isolation, for hosts where no user namespace can be created (inside
 * an unprivileged container). RUN is NOT isolated from the host the way bwrap
 * and runc isolate it: it shares the host's users, and (when the host refuses
 * a pid namespace) its processes. Where not even a mount namespace is allowed,
 * it falls back to a plain chroot (chroot-plain.ts). runtime/chroot-run.sh mounts /proc, a minimal
 * /dev and the step's mounts in a private mount namespace, then
 * `unshare --root --wd` chroots and the setpriv helper switches to USER.
 */
export class ChrootExecutor implements Executor {
  readonly name = 'chroot' as const;
  readonly isolated = false;
  readonly #unshare: string;

  constructor(unshare = which('unshare')) {
    if (!unshare) {
      throw new HostError('Cannot use chroot isolation: util-linux "unshare" is not installed', {
        code: 'HOST_NO_UNSHARE',
        hint: 'Install util-linux (Debian/Ubuntu: apt-get install util-linux).',
      });
    }
    this.#unshare = unshare;
  }

  async run(req: RunRequest, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const { ns, net } = await probeChrootNamespaces(this.#unshare);
    if (ns.length === 0) {
      await runChrootWithoutNamespaces(which('chroot')!, await setprivHelper(), req, opts);
      return;
    }
    if (req.network === 'none' && !net) {
      throw new HostError('Cannot run with --network=none: this host does not allow kiln to create a network namespace', {
        code: 'HOST_NO_NET_NS',
        hint: 'Use --network=host for this step, or run kiln where it may create namespaces (CAP_SYS_ADMIN).',
      });
    }
    const helper = await setprivHelper();
    const prep = await prepareRun(req);
    try {
      const mountArgs = [...prep.mounts, ...helperMounts(helper)].flatMap(scriptMount);
      // The setup shells export PWD, OLDPWD, SHLVL, _: env(1) in the sandbox restores the step's values.
      const { shellEnv, held } = splitHostEnv(prep.env);
      const args = [
        ...ns,
        ...(req.network === 'none' ? ['--net'] : []),
        '--',
        '/bin/sh', runtimeDir() + 'chroot-run.sh',
        prep.rootfs, prep.hostname, prep.cwd,
        ...mountArgs,
        '--',
        ...helperArgv(helper, req.user, req.args, { canSetgroups: setgroupsAllowed(), envFix: envFix(prep.env, held) }),
      ];
      const o: Parameters<typeof spawnSandbox>[2] = { argv: req.args, env: shellEnv };
      if (req.display !== undefined) o.display = req.display;
      if (req.onOutput) o.onOutput = req.onOutput;
      if (opts.signal) {
        o.signal = opts.signal;
        // Without a pid namespace, the step's processes are killed by process group.
        if (!ns.includes('--pid')) o.kill = (child) => void (child.pid && process.kill(-child.pid, 'SIGKILL'));
      }
      await spawnSandbox(this.#unshare, args, o);
    } finally {
      await prep.cleanup();
    }
  }
}

function scriptMount(m: PreparedMount): string[] {
  if (m.kind === 'tmpfs') return ['tmpfs', m.sizeBytes === undefined ? '-' : String(m.sizeBytes), m.dest];
  return [m.readonly ? 'ro' : 'rw', m.source, m.dest];
}
