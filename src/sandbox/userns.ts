import { spawn, execFile } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HostError } from '../errors.js';
import { BUILD_NS_ENV, readSubIds, type IdRange } from './host-profile.js';
import { which } from '../util/which.js';

const execFileP = promisify(execFile);

export const SINGLE_ID_WARNING =
  'kiln: no subordinate id range for "%USER%" in /etc/subuid and /etc/subgid: building in a single-id user namespace. ' +
  'Only root (uid 0) can own files: layers record other owners as root, and RUN steps that chown to another user, or USER other than root, fail. ' +
  'Fix: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %USER% (then log in again).\n';

export interface EnsureBuildNamespaceOptions {
  stderr?: NodeJS.WritableStream;
  /** The script to re-execute (default: kiln's CLI entry point next to this module). */
  entry?: string;
  /** Write the id maps with newuidmap/newgidmap from kiln even when unshare could (tests the pre-2.38 path). */
  ownIdMaps?: boolean;
}

/**
 * Make this process root in a user + mount namespace, so that it can chown,
 * mount overlay and extract layers with real ownership. The CLI calls it first
 * thing for commands that need it (`needsNamespace`).
 *
 * - Already root (real root, or the re-executed child): returns.
 * - Rootless with a subuid/subgid range: re-executes kiln (`entry` with `argv`)
 *   under `unshare --user --mount` with 0 → the user and 1…count → the range
 *   (newuidmap/newgidmap, as `unshare --map-auto` does; kiln writes the maps
 *   itself with an older unshare), waits for the child, and exits with its
 *   status: the returned promise never settles.
 * - Rootless without a range: same with a single-id map (`--map-root-user`),
 *   after printing what will not work.
 * - No user namespaces: returns; executor selection then explains the fix.
 */
export async function ensureBuildNamespace(argv: string[], opts: EnsureBuildNamespaceOptions = {}): Promise<void> {
  const stderr = opts.stderr ?? process.stderr;
  const mode = process.env[BUILD_NS_ENV];
  if (mode === 'subuid' || mode === 'single') {
    await waitForIdMap();
    if (process.getuid?.() !== 0) {
      throw new HostError(`Cannot enter kiln's build user namespace: uid is ${process.getuid?.()} instead of 0`, {
        code: 'HOST_USERNS_MAP',
        hint: `Unset ${BUILD_NS_ENV} if you set it yourself.`,
      });
    }
    return;
  }
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return;
  const unshare = which('unshare');
  if (!unshare) return;
  if (!(await execFileP(unshare, ['--user', '--map-root-user', '--', 'true']).then(() => true, () => false))) return;

  let user = String(uid);
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry
  }
  const gid = process.getgid?.() ?? uid;
  const subuid = readSubIds('/etc/subuid', user, uid)[0];
  const subgid = readSubIds('/etc/subgid', user, uid)[0];
  const newuidmap = which('newuidmap');
  const newgidmap = which('newgidmap');
  const full = Boolean(subuid && subgid && newuidmap && newgidmap);
  if (!full) stderr.write(SINGLE_ID_WARNING.replaceAll('%USER%', user));

  const entry = opts.entry ?? defaultEntry();
  const target = [process.execPath, ...process.execArgv, entry, ...argv];
  const env = { ...process.env, [BUILD_NS_ENV]: full ? 'subuid' : 'single' };
  // The mapping must exist before kiln is executed in the namespace: execve()
  // by an unmapped uid drops every capability, so "root" could not chown.
  let cmd: string[];
  let syncFd = false;
  if (!full) {
    cmd = [unshare, '--user', '--map-root-user', '--mount', '--propagation', 'private', '--', ...target];
  } else if (!opts.ownIdMaps && (await unshareMapsRanges(unshare))) {
    // util-linux >= 2.38 runs newuidmap/newgidmap itself before exec.
    cmd = [unshare, '--user', '--map-root-user', `--map-users=${subuid!.start},1,${subuid!.count}`, `--map-groups=${subgid!.start},1,${subgid!.count}`,
      '--mount', '--propagation', 'private', '--', ...target];
  } else {
    // Older unshare: a shell waits on fd 3 until kiln has written the maps, then execs.
    syncFd = true;
    cmd = [unshare, '--user', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', 'read _ <&3; exec 3<&-; exec "$@"', 'sh', ...target];
  }
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: syncFd ? ['inherit', 'inherit', 'inherit', 'pipe'] : 'inherit', env });
  const forward = (sig: NodeJS.Signals) => () => {
    try {
      child.kill(sig);
    } catch {
      // gone
    }
  };
  // SIGINT from a terminal reaches the child through the process group; don't die first.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', forward('SIGTERM'));
  process.on('SIGHUP', forward('SIGHUP'));

  const exited = new Promise<never>((_resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      if (sig) {
        process.removeAllListeners(sig);
        process.kill(process.pid, sig);
      }
      process.exit(code ?? 1);
    });
  });
  if (syncFd) {
    try {
      await writeIdMaps(child.pid!, uid, gid, subuid!, subgid!, newuidmap!, newgidmap!);
      (child.stdio[3] as NodeJS.WritableStream).end('go\n');
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }
  return exited;
}

let mapsRanges: Promise<boolean> | undefined;
/** Does this unshare(1) know --map-users/--map-groups (util-linux 2.38)? */
function unshareMapsRanges(unshare: string): Promise<boolean> {
  mapsRanges ??= execFileP(unshare, ['--help']).then(
    ({ stdout }) => stdout.includes('--map-users'),
    () => false,
  );
  return mapsRanges;
}

/** Defined (true) by scripts/bundle-cli.mjs in the bundled CLI, dist/src/cli/kiln-bundle.cjs. */
declare const KILN_CLI_BUNDLE: boolean | undefined;

/** The CLI entry to re-execute: the bin beside the bundle when this code runs from it, else cli/main. */
function defaultEntry(): string {
  if (typeof KILN_CLI_BUNDLE !== 'undefined' && KILN_CLI_BUNDLE) return fileURLToPath(new URL('./kiln.js', import.meta.url));
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`../cli/main${ext}`, import.meta.url));
}

/** Wait until unshare(1) has created the namespace, then map 0 → user and 1… → the range. */
async function writeIdMaps(pid: number, uid: number, gid: number, subuid: IdRange, subgid: IdRange, newuidmap: string, newgidmap: string): Promise<void> {
  const own = readlinkSync('/proc/self/ns/user');
  const deadline = Date.now() + 10_000;
  for (;;) {
    let ns: string | undefined;
    try {
      ns = readlinkSync(`/proc/${pid}/ns/user`);
    } catch {
      throw new HostError('Cannot create kiln\'s build user namespace: unshare exited early');
    }
    if (ns !== own) break;
    if (Date.now() > deadline) throw new HostError('Cannot create kiln\'s build user namespace: unshare did not start in 10 s');
    await new Promise((r) => setTimeout(r, 2));
  }
  const hint = 'Check /etc/subuid and /etc/subgid, and that newuidmap/newgidmap are setuid root (apt-get install --reinstall uidmap).';
  try {
    await execFileP(newuidmap, [String(pid), '0', String(uid), '1', '1', String(subuid.start), String(subuid.count)]);
  } catch (err) {
    throw new HostError(`Cannot map uids for kiln's build user namespace: ${String((err as { stderr?: string }).stderr ?? err).trim()}`, { code: 'HOST_USERNS_MAP', hint, cause: err });
  }
  try {
    await execFileP(newgidmap, [String(pid), '0', String(gid), '1', '1', String(subgid.start), String(subgid.count)]);
  } catch (err) {
    throw new HostError(`Cannot map gids for kiln's build user namespace: ${String((err as { stderr?: string }).stderr ?? err).trim()}`, { code: 'HOST_USERNS_MAP', hint, cause: err });
  }
}

/** In the re-executed child: wait until the parent has written our uid_map (or unshare did). */
async function waitForIdMap(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (readFileSync('/proc/self/uid_map', 'utf8').trim() === '' || readFileSync('/proc/self/gid_map', 'utf8').trim() === '') {
    if (Date.now() > deadline) throw new HostError('Cannot enter kiln\'s build user namespace: no id map after 10 s', { code: 'HOST_USERNS_MAP' });
    await new Promise((r) => setTimeout(r, 2));
  }
}
