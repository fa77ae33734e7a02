import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { HostError } from '../errors.js';
import { prepareRun, type PreparedMount, type PreparedRun } from './prepare-run.js';
import { readRuntimeFile } from './runtime-files.js';
import { envFix, helperMounts, pdeathsigArgv, setprivHelper, splitHostEnv, type Helper } from './setpriv-helper.js';
import { spawnSandbox } from './spawn-sandbox.js';
import type { Executor, RunRequest } from './types.js';
import { which } from '../util/which.js';

const execFileP = promisify(execFile);

/**
 * runc executor: an OCI runtime spec built from runtime/runc-spec.json, run
 * with `runc run` in the foreground (stdio passed through). Needs root (real,
 * or kiln's build namespace on a host where runc's rootless mode works). The
 * container state lives in a per-run directory; `runc delete --force` always
 * runs, so an aborted step leaves no container, cgroup or mount.
 */
export class RuncExecutor implements Executor {
  readonly name = 'runc' as const;
  readonly isolated = true;
  readonly #bin: string;

  constructor(bin = which('runc')) {
    if (!bin) {
      throw new HostError('Cannot use runc isolation: runc is not installed', {
        code: 'HOST_NO_RUNC',
        hint: 'Install runc (Debian/Ubuntu: apt-get install runc) or pass --isolation bwrap|chroot.',
      });
    }
    this.#bin = bin;
  }

  async run(req: RunRequest, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const helper = await setprivHelper();
    const prep = await prepareRun(req);
    const id = `kiln-${process.pid}-${randomBytes(6).toString('hex')}`;
    const bundle = join(prep.tempDir, 'bundle');
    const state = join(prep.tempDir, 'state');
    const runc = (...a: string[]) => execFileP(this.#bin, ['--root', state, ...a], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    try {
      await mkdir(bundle, { mode: 0o700 });
      await mkdir(state, { mode: 0o700 });
      await writeFile(join(bundle, 'config.json'), JSON.stringify(buildSpec(req, prep, helper)));
      const o: Parameters<typeof spawnSandbox>[2] = {
        argv: req.args,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        kill: async () => {
          await runc('kill', id, 'KILL').catch(() => undefined);
        },
      };
      if (req.display !== undefined) o.display = req.display;
      if (req.onOutput) o.onOutput = req.onOutput;
      if (opts.signal) o.signal = opts.signal;
      await spawnSandbox(this.#bin, ['--root', state, 'run', '--bundle', bundle, '--no-new-keyring', id], o);
    } finally {
      await runc('delete', '--force', id).catch(() => undefined);
      await rm(state, { recursive: true, force: true }).catch(() => undefined);
      await prep.cleanup();
    }
  }
}

interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/**
 * The OCI runtime spec for one run (the process env is prep.env). With a
 * helper, the process runs under setpriv --pdeathsig KILL, so that the step
 * dies with `runc run` (itself killed if kiln dies).
 */
export function buildSpec(req: RunRequest, prep: PreparedRun, helper?: Helper): Record<string, unknown> {
  const spec = JSON.parse(readRuntimeFile('runc-spec.json')) as {
    process: Record<string, unknown>;
    root: { path: string; readonly: boolean };
    hostname: string;
    mounts: OciMount[];
    linux: { namespaces: { type: string }[] };
  };
  // With the helper, host-special variables (LD_PRELOAD …) are held back from it and restored by env(1) last.
  const { shellEnv, held } = splitHostEnv(prep.env);
  const heldKeys = helper ? held : [];
  spec.process.args = helper ? pdeathsigArgv(helper, req.args, heldKeys.length ? envFix(prep.env, heldKeys) : []) : req.args;
  spec.process.env = Object.entries(helper ? shellEnv : prep.env).map(([k, v]) => `${k}=${v}`);
  spec.process.cwd = prep.cwd;
  spec.process.user = { uid: req.user.uid, gid: req.user.gid, ...(req.user.additionalGids.length ? { additionalGids: req.user.additionalGids } : {}) };
  spec.root.path = prep.rootfs;
  spec.hostname = prep.hostname;
  spec.mounts.push(...[...prep.mounts, ...(helper ? helperMounts(helper) : [])].map(ociMount));
  if (req.network === 'none') spec.linux.namespaces.push({ type: 'network' });
  return spec;
}

function ociMount(m: PreparedMount): OciMount {
  if (m.kind === 'tmpfs') {
    return { destination: m.dest, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', ...(m.sizeBytes !== undefined ? [`size=${m.sizeBytes}`] : [])] };
  }
  return { destination: m.dest, type: 'bind', source: m.source, options: ['rbind', m.readonly ? 'ro' : 'rw'] };
}
