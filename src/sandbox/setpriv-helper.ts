import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { HostError } from '../errors.js';
import { cachedProbe, fileIdentity } from '../util/host-probe-cache.js';
import type { PreparedMount } from './prepare-run.js';
import type { RunUser } from './types.js';

const execFileP = promisify(execFile);

/**
 * The RUN process switches to its USER (uid, gid, supplementary groups) and
 * drops to docker's default capability bounding set through the host's
 * util-linux `setpriv`, which the rootfs need not contain: the binary, its
 * libraries and its dynamic loader are bind-mounted read-only into the
 * sandbox's private /dev tmpfs (HELPER_DIR) and started through the loader.
 * Nothing is written to the rootfs.
 */
export const HELPER_DIR = '/dev/.kiln';

/** docker's default capabilities (moby oci/caps/defaults.go), setpriv spelling. */
export const DEFAULT_CAPS = [
  'chown', 'dac_override', 'fsetid', 'fowner', 'mknod', 'net_raw', 'setgid', 'setuid',
  'setfcap', 'setpcap', 'net_bind_service', 'sys_chroot', 'kill', 'audit_write',
];

export interface Helper {
  files: { source: string; name: string }[];
  /** Loader file name, or undefined when setpriv is static. */
  loader?: string;
}

let cached: Promise<Helper> | undefined;

export function findSetpriv(): string | undefined {
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv']) if (existsSync(p)) return p;
  return undefined;
}

async function locate(): Promise<Helper> {
  const setpriv = findSetpriv();
  if (!setpriv) {
    throw new HostError('Cannot run RUN steps: util-linux "setpriv" is not installed', {
      code: 'HOST_NO_SETPRIV',
      hint: 'Install util-linux (Debian/Ubuntu: apt-get install util-linux; Fedora: dnf install util-linux-core; Alpine: apk add setpriv).',
    });
  }
  const env = ['/usr/bin/env', '/bin/env'].find((p) => existsSync(p));
  if (!env) throw new HostError('Cannot run RUN steps: coreutils "env" is not installed', { code: 'HOST_NO_SETPRIV' });
  const files = [
    { source: setpriv, name: 'setpriv' },
    { source: env, name: 'env' },
  ];
  // ldd runs the loader three times per binary: remembered while the binaries and every library stay the same.
  const identities = (h: Helper) => h.files.map((f) => fileIdentity(f.source));
  const cachedHelper = await cachedProbe<Helper & { identities?: string[] }>(
    'setpriv-helper',
    [fileIdentity(setpriv), fileIdentity(env)],
    async () => {
      const h = await sharedLibrariesOf(files, [setpriv, env]);
      return { ...h, identities: identities(h) };
    },
    { keep: () => true, stillValid: (h) => Array.isArray(h.files) && JSON.stringify(identities(h)) === JSON.stringify(h.identities) },
  );
  return cachedHelper.loader ? { files: cachedHelper.files, loader: cachedHelper.loader } : { files: cachedHelper.files };
}

/** `files` plus the libraries and loader the binaries need. */
async function sharedLibrariesOf(base: Helper['files'], bins: string[]): Promise<Helper> {
  const files = [...base];
  let loader: string | undefined;
  for (const deps of await Promise.all(bins.map(sharedLibraries))) {
    if (!deps) continue;
    for (const path of deps.libs) {
      const name = basename(path);
      if (!files.some((f) => f.name === name)) files.push({ source: path, name });
    }
    loader ??= deps.loader;
  }
  return loader ? { files, loader } : { files };
}

/** ldd's view of `bin`: undefined for a static binary. */
async function sharedLibraries(bin: string): Promise<{ libs: string[]; loader: string } | undefined> {
  let out = '';
  try {
    out = (await execFileP('ldd', [bin], { env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' } })).stdout;
  } catch (err) {
    const text = String((err as { stdout?: string }).stdout ?? '') + String((err as { stderr?: string }).stderr ?? '');
    if (/not a dynamic executable|statically linked/.test(text)) return undefined;
    throw new HostError(`Cannot inspect "${bin}" with ldd: ${(err as Error).message}`, { code: 'HOST_NO_SETPRIV', cause: err });
  }
  if (/statically linked|not a dynamic executable/.test(out)) return undefined;
  const libs: string[] = [];
  let loader: string | undefined;
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (!m) continue;
    libs.push(m[1]!);
    if (/(^|\/)ld-(linux|musl)[^/]*$/.test(m[1]!)) loader = basename(m[1]!);
  }
  loader ??= readInterpreterName(bin);
  if (!loader) throw new HostError(`Cannot find the dynamic loader of "${bin}"`, { code: 'HOST_NO_SETPRIV' });
  return { libs, loader };
}

function readInterpreterName(file: string): string | undefined {
  const buf = readFileSync(file);
  const m = /\/lib[^\0]*\/ld-[^\0]+/.exec(buf.subarray(0, 4096).toString('latin1'));
  return m ? basename(m[0]) : undefined;
}

export function setprivHelper(): Promise<Helper> {
  cached ??= locate().catch((err) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

/** Read-only binds that put the helper at HELPER_DIR (on the sandbox's /dev tmpfs). */
export function helperMounts(h: Helper): PreparedMount[] {
  return h.files.map((f) => ({ kind: 'bind' as const, source: f.source, dest: `${HELPER_DIR}/${f.name}`, readonly: true }));
}

/** True when this process may call setgroups() (false in a user namespace with setgroups=deny). */
export function setgroupsAllowed(): boolean {
  try {
    return readFileSync('/proc/self/setgroups', 'utf8').trim() !== 'deny';
  } catch {
    return true;
  }
}

/**
 * argv that runs `args` as `user` inside the sandbox through the helper.
 * `envFix` (env(1) arguments, e.g. ["-u", "PWD"]) then undoes what the
 * runtime changed in the environment and restores held variables.
 */
export function helperArgv(h: Helper, user: RunUser, args: string[], opts: { canSetgroups: boolean; envFix?: string[] }): string[] {
  const exec = (name: string) => (h.loader ? [`${HELPER_DIR}/${h.loader}`, '--library-path', HELPER_DIR, `${HELPER_DIR}/${name}`] : [`${HELPER_DIR}/${name}`]);
  // setpriv first; env(1) last, so that restored variables (LD_PRELOAD …) only reach the step, not the helpers.
  const post = opts.envFix?.length ? [...exec('env'), ...opts.envFix] : [];
  const groups = user.additionalGids.length
    ? ['--groups', user.additionalGids.join(',')]
    : opts.canSetgroups
      ? ['--clear-groups']
      : ['--keep-groups'];
  return [
    ...exec('setpriv'),
    '--reuid', String(user.uid),
    '--regid', String(user.gid),
    ...groups,
    '--inh-caps', '-all',
    '--bounding-set', `-all,${DEFAULT_CAPS.map((c) => '+' + c).join(',')}`,
    '--',
    ...post,
    ...args,
  ];
}

/**
 * argv that runs `args` with a parent-death SIGKILL (runc: the user is already
 * set by runc), then env(1) with `envFix` as in helperArgv.
 */
export function pdeathsigArgv(h: Helper, args: string[], envFixArgs: string[] = []): string[] {
  const exec = (name: string) => (h.loader ? [`${HELPER_DIR}/${h.loader}`, '--library-path', HELPER_DIR, `${HELPER_DIR}/${name}`] : [`${HELPER_DIR}/${name}`]);
  return [...exec('setpriv'), '--pdeathsig', 'KILL', '--', ...(envFixArgs.length ? [...exec('env'), ...envFixArgs] : []), ...args];
}

/** Variables the runtime chain (bash, dash, bwrap) may add or change on the way into the sandbox. */
export const ENV_FIX_KEYS = ['PWD', 'OLDPWD', 'SHLVL', '_'];

/**
 * Variables host programs would interpret: bash/dash start-up (BASH_ENV runs a
 * file, SHELLOPTS+PS4 run code …) and glibc's list of variables setuid programs
 * ignore (LD_PRELOAD would load a library named by the Dockerfile on the host).
 */
const HOST_SPECIAL = new Set([
  'BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'BASH_XTRACEFD', 'GLOBIGNORE', 'CDPATH', 'IFS', 'POSIXLY_CORRECT', 'EXECIGNORE', 'PROMPT_COMMAND', 'BASH_LOADABLES_PATH',
  'GCONV_PATH', 'GETCONF_DIR', 'HOSTALIASES', 'LOCALDOMAIN', 'LOCPATH', 'NIS_PATH', 'NLSPATH', 'RESOLV_HOST_CONF', 'RES_OPTIONS', 'TMPDIR', 'TZDIR', 'TZ',
]);
const HOST_SPECIAL_PREFIXES = ['BASH_FUNC_', 'LD_', 'MALLOC_', 'GLIBC_', 'LIBMOUNT_', 'LIBBLKID_', 'LIBSMARTCOLS_'];

/**
 * Split the step's environment for the host programs that start the chroot
 * runtime (bash, setpriv, unshare, dash, mount): `shellEnv` is safe to give
 * them; `held` are the keys kept away from them (host-special names, names a
 * shell would drop) that env(1) in the sandbox restores. (bwrap gets none of
 * the step's environment: it sets it from --args.)
 */
export function splitHostEnv(env: Record<string, string>): { shellEnv: Record<string, string>; held: string[] } {
  const shellEnv: Record<string, string> = {};
  const held: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (HOST_SPECIAL.has(k) || HOST_SPECIAL_PREFIXES.some((p) => k.startsWith(p)) || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) held.push(k);
    else shellEnv[k] = v;
  }
  return { shellEnv, held };
}

/**
 * env(1) arguments (options before assignments) that give ENV_FIX_KEYS and
 * `held` back the values of `env`. Held values appear in the helper's argv
 * for the instant it runs.
 */
export function envFix(env: Record<string, string>, held: string[] = []): string[] {
  const keys = [...new Set([...ENV_FIX_KEYS, ...held])];
  return [...keys.filter((k) => !(k in env)).flatMap((k) => ['-u', k]), ...keys.filter((k) => k in env).map((k) => `${k}=${env[k]}`)];
}
