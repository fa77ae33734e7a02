import { execFile } from 'node:child_process';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';
import { cachedProbe, fileIdentity } from '../util/host-probe-cache.js';
import { which } from '../util/which.js';

const execFileP = promisify(execFile);

/**
 * Host profiles (DESIGN.md): what kiln can do here, detected without side
 * effects beyond short-lived probe processes. Pure readers take their inputs
 * as arguments so tests can feed them; `detectHostProfile` wires them to the
 * real host.
 */
export type HostProfileKind = 'root' | 'rootless-subuid' | 'rootless-single-id' | 'no-userns';

export interface IdRange {
  start: number;
  count: number;
}

export interface FeatureCheck {
  id: 'userns' | 'overlay-userns' | 'newuidmap' | 'subuid' | 'bwrap' | 'runc' | 'setpriv' | 'seccomp' | 'apparmor' | 'proc';
  title: string;
  ok: boolean;
  detail: string;
  /** The exact fix when !ok. */
  fix?: string;
}

export interface HostProfile {
  kind: HostProfileKind;
  uid: number;
  user: string;
  /** Set when this process runs in kiln's build user namespace ("subuid" or "single"). */
  buildNamespace?: 'subuid' | 'single';
  subuid: IdRange[];
  subgid: IdRange[];
  features: FeatureCheck[];
}

/** Env var kiln sets in the process it re-executes in its build user namespace. */
export const BUILD_NS_ENV = 'KILN_BUILD_NS';

/** Parse /etc/subuid or /etc/subgid text: the ranges of `name` (or its numeric id). */
export function parseSubIds(text: string, name: string, id: number): IdRange[] {
  const out: IdRange[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(':');
    if (f.length !== 3 || (f[0] !== name && f[0] !== String(id))) continue;
    const start = Number(f[1]);
    const count = Number(f[2]);
    if (Number.isSafeInteger(start) && Number.isSafeInteger(count) && count > 0) out.push({ start, count });
  }
  return out;
}

export function readSubIds(file: string, name: string, id: number): IdRange[] {
  try {
    return parseSubIds(readFileSync(file, 'utf8'), name, id);
  } catch {
    return [];
  }
}

/** "Seccomp:" of /proc/self/status: 0 none, 1 strict, 2 filter. */
export function parseSeccompMode(status: string): number {
  const m = /^Seccomp:\s*(\d)/m.exec(status);
  return m ? Number(m[1]) : 0;
}

/** Mount points below /proc (other than /proc itself) in mountinfo text: a masked /proc (docker, podman). */
export function maskedProcPaths(mountinfo: string): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && mp.startsWith('/proc/') && !mp.startsWith('/proc/sys/fs/binfmt_misc')) out.push(mp);
  }
  return out;
}

function readText(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

async function succeeds(file: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  try {
    await execFileP(file, args, { timeout: 10_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    return { ok: true, stderr: '' };
  } catch (err) {
    return { ok: false, stderr: String((err as { stderr?: string }).stderr ?? (err as Error).message).trim() };
  }
}

/** Can this process create a user namespace (probe: `unshare --user true`)? */
export async function canCreateUserNamespace(): Promise<{ ok: boolean; stderr: string }> {
  const unshare = which('unshare');
  if (!unshare) return { ok: false, stderr: 'unshare(1) not installed' };
  return cachedProbe('userns', [fileIdentity(unshare)], () => succeeds(unshare, ['--user', '--map-root-user', '--', 'true']), { keep: (r) => r.ok });
}

/** Can an overlay be mounted (with userxattr) inside a new user namespace? */
export async function canMountOverlayInUserns(): Promise<{ ok: boolean; stderr: string }> {
  const unshare = which('unshare');
  if (!unshare) return { ok: false, stderr: 'unshare(1) not installed' };
  const script =
    'd=$(mktemp -d) && mkdir "$d/l" "$d/u" "$d/w" "$d/m" && mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w,userxattr" "$d/m"; r=$?; umount "$d/m" 2>/dev/null; rm -rf "$d"; exit $r';
  return succeeds(unshare, ['--user', '--map-root-user', '--mount', '--', '/bin/sh', '-c', script]);
}

/** Does bwrap work here as kiln uses it (no --unshare-user; pid namespace; fresh /proc)? */
export async function bwrapWorks(): Promise<{ ok: boolean; stderr: string }> {
  const bwrap = which('bwrap');
  if (!bwrap) return { ok: false, stderr: 'bwrap not installed' };
  const args = ['--bind', '/', '/', '--unshare-pid', '--unshare-ipc', '--proc', '/proc', '--dev', '/dev', '--', 'true'];
  return cachedProbe('bwrap-works', [fileIdentity(bwrap), fileIdentity(which('true'))], () => succeeds(bwrap, args), { keep: (r) => r.ok });
}

/** Detect the host profile and every feature kiln uses, each with its fix. */
export async function detectHostProfile(): Promise<HostProfile> {
  const uid = process.getuid?.() ?? 0;
  let user = String(uid);
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry
  }
  const nsEnv = process.env[BUILD_NS_ENV];
  const buildNamespace = nsEnv === 'subuid' || nsEnv === 'single' ? nsEnv : undefined;
  const subuid = readSubIds('/etc/subuid', user, uid);
  const subgid = readSubIds('/etc/subgid', user, uid);
  const features: FeatureCheck[] = [];

  const [userns, overlay, bwrap] = await Promise.all([canCreateUserNamespace(), canMountOverlayInUserns(), bwrapWorks()]);
  const maxNs = readText('/proc/sys/user/max_user_namespaces')?.trim();
  const debianClone = readText('/proc/sys/kernel/unprivileged_userns_clone')?.trim();
  const aaRestrict = readText('/proc/sys/kernel/apparmor_restrict_unprivileged_userns')?.trim();
  let usernsFix = 'Allow user namespaces: sysctl -w user.max_user_namespaces=15000';
  if (maxNs === '0') usernsFix = 'sysctl -w user.max_user_namespaces=15000 (persist it in /etc/sysctl.d/99-kiln.conf)';
  else if (debianClone === '0') usernsFix = 'sysctl -w kernel.unprivileged_userns_clone=1 (persist it in /etc/sysctl.d/99-kiln.conf)';
  else if (aaRestrict === '1') usernsFix = 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or install an AppArmor profile that allows userns for kiln';
  else if (parseSeccompMode(readText('/proc/self/status') ?? '') === 2)
    usernsFix = 'The container runtime\'s seccomp profile blocks unshare(CLONE_NEWUSER): run the container with --security-opt seccomp=unconfined (or a profile that allows it)';
  features.push({ id: 'userns', title: 'user namespaces', ok: userns.ok, detail: userns.ok ? 'can create a user namespace' : userns.stderr, ...(userns.ok ? {} : { fix: usernsFix }) });

  features.push({
    id: 'overlay-userns',
    title: 'overlay in a user namespace',
    ok: overlay.ok,
    detail: overlay.ok ? 'overlay with userxattr mounts inside a user namespace' : overlay.stderr || 'mount failed',
    ...(overlay.ok ? {} : { fix: 'Use Linux >= 5.11 (unprivileged overlay with userxattr); until then kiln uses the copy snapshotter (slower).' }),
  });

  const newuidmap = which('newuidmap');
  const newgidmap = which('newgidmap');
  const privileged = (p: string | undefined) => {
    if (!p) return false;
    try {
      const st = statSync(p);
      // setuid root, or file capabilities (cap_setuid/cap_setgid in security.capability).
      return (st.uid === 0 && (st.mode & 0o4000) !== 0) || hasFileCaps(p);
    } catch {
      return false;
    }
  };
  const mapsOk = Boolean(newuidmap && newgidmap) && privileged(newuidmap) && privileged(newgidmap);
  features.push({
    id: 'newuidmap',
    title: 'newuidmap/newgidmap',
    ok: mapsOk,
    detail: !newuidmap || !newgidmap ? 'not installed' : mapsOk ? `${newuidmap}, ${newgidmap}` : 'installed but neither setuid root nor with file capabilities',
    ...(mapsOk ? {} : { fix: newuidmap && newgidmap ? 'apt-get install --reinstall uidmap (or: chmod u+s /usr/bin/newuidmap /usr/bin/newgidmap)' : 'apt-get install uidmap (Fedora: dnf install shadow-utils)' }),
  });

  if (uid !== 0 || buildNamespace) {
    const ok = subuid.length > 0 && subgid.length > 0;
    features.push({
      id: 'subuid',
      title: 'subordinate id range',
      ok,
      detail: ok ? `subuid ${subuid[0]!.start}+${subuid[0]!.count}, subgid ${subgid[0]!.start}+${subgid[0]!.count}` : `no range for "${user}" in /etc/subuid and /etc/subgid`,
      ...(ok ? {} : { fix: `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}` }),
    });
  }

  features.push({
    id: 'bwrap',
    title: 'bubblewrap',
    ok: bwrap.ok,
    detail: bwrap.ok ? which('bwrap')! : bwrap.stderr,
    ...(bwrap.ok ? {} : { fix: which('bwrap') ? 'bwrap cannot create its namespaces here: see the user namespace and /proc lines' : 'apt-get install bubblewrap' }),
  });
  const runc = which('runc');
  features.push({
    id: 'runc',
    title: 'runc (--isolation runc)',
    ok: Boolean(runc),
    detail: runc ? (uid === 0 ? runc : `${runc} (used inside kiln's build namespace, in runc's rootless mode)`) : 'not installed',
    ...(runc ? {} : { fix: 'Optional: apt-get install runc' }),
  });
  const setpriv = which('setpriv');
  features.push({
    id: 'setpriv',
    title: 'setpriv (RUN as USER)',
    ok: Boolean(setpriv),
    detail: setpriv ?? 'not installed',
    ...(setpriv ? {} : { fix: 'apt-get install util-linux' }),
  });
  const seccomp = parseSeccompMode(readText('/proc/self/status') ?? '');
  features.push({
    id: 'seccomp',
    title: 'seccomp',
    ok: seccomp === 0 || userns.ok,
    detail: seccomp === 0 ? 'kiln runs without a seccomp filter' : `kiln runs under a seccomp filter (mode ${seccomp})${userns.ok ? ' that allows user namespaces' : ''}`,
    ...(seccomp === 0 || userns.ok ? {} : { fix: 'Run the container with --security-opt seccomp=unconfined, or a profile that allows unshare, mount and pivot_root' }),
  });
  const aaProfile = readText('/proc/self/attr/current')?.replace(/\0/g, '').trim();
  const aaOk = aaRestrict !== '1' || userns.ok;
  features.push({
    id: 'apparmor',
    title: 'AppArmor',
    ok: aaOk,
    detail: `${aaProfile ? `profile "${aaProfile}"` : 'no AppArmor profile'}${aaRestrict === '1' ? ', unprivileged user namespaces restricted' : ''}`,
    ...(aaOk ? {} : { fix: 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or run the container with --security-opt apparmor=unconfined' }),
  });
  const masked = maskedProcPaths(readText('/proc/self/mountinfo') ?? '');
  features.push({
    id: 'proc',
    title: 'unmasked /proc',
    ok: masked.length === 0,
    detail: masked.length === 0 ? 'no mounts over /proc entries' : `masked: ${masked.slice(0, 4).join(', ')}${masked.length > 4 ? ' …' : ''} (the kernel then refuses a fresh /proc in a user namespace)`,
    ...(masked.length === 0 ? {} : { fix: 'Run the container with --security-opt systempaths=unconfined (docker) or --security-opt unmask=ALL (podman)' }),
  });

  let kind: HostProfileKind;
  if (buildNamespace === 'subuid') kind = 'rootless-subuid';
  else if (buildNamespace === 'single') kind = 'rootless-single-id';
  else if (uid === 0) kind = userns.ok ? 'root' : 'no-userns';
  else if (!userns.ok) kind = 'no-userns';
  else kind = subuid.length > 0 && subgid.length > 0 && mapsOk ? 'rootless-subuid' : 'rootless-single-id';
  const profile: HostProfile = { kind, uid, user, subuid, subgid, features };
  if (buildNamespace) profile.buildNamespace = buildNamespace;
  return profile;
}

/** The user namespace of this process (e.g. "user:[4026531837]"). */
export function ownUserNamespace(): string {
  return readlinkSync('/proc/self/ns/user');
}

function hasFileCaps(p: string): boolean {
  try {
    return execFileSync('getfattr', ['-n', 'security.capability', '--only-values', p], { stdio: ['ignore', 'pipe', 'ignore'] }).length > 0;
  } catch {
    return false;
  }
}
