import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { KilnError } from '../errors.js';
import { resolveInRoot } from '../util/safe-path.js';
import type { RunUser } from './types.js';

/**
 * Resolve a Dockerfile USER value ("name", "uid", "name:group", "uid:gid", …)
 * against the rootfs's /etc/passwd and /etc/group, read inside the rootfs
 * (symlinks cannot point the lookup at host files).
 *
 * Rules (as BuildKit / runc): "" is root, and so is "root" (and group "root")
 * in a rootfs without passwd/group entries for it. A numeric uid absent from passwd is
 * used as is with gid 0; a name absent from passwd is an error. An explicit
 * group (name or gid) sets the primary gid and no supplementary groups are
 * added; otherwise the supplementary groups are the /etc/group entries that
 * list the user's name as a member.
 */
export async function resolveUser(rootfs: string, spec: string): Promise<RunUser> {
  const trimmed = spec.trim();
  if (trimmed === '') return { uid: 0, gid: 0, additionalGids: [] };
  const colon = trimmed.indexOf(':');
  const userPart = colon === -1 ? trimmed : trimmed.slice(0, colon);
  const groupPart = colon === -1 ? undefined : trimmed.slice(colon + 1);
  if (userPart === '') throw new KilnError('USER_INVALID', `Cannot resolve USER "${spec}": the user is empty`);

  const passwd = parsePasswd(await readRootfsFile(rootfs, '/etc/passwd'));
  const groups = parseGroup(await readRootfsFile(rootfs, '/etc/group'));

  let uid: number;
  let gid = 0;
  let name: string | undefined;
  if (isId(userPart)) {
    uid = Number(userPart);
    const entry = passwd.find((p) => p.uid === uid);
    if (entry) {
      gid = entry.gid;
      name = entry.name;
    }
  } else {
    const entry = passwd.find((p) => p.name === userPart) ?? (userPart === 'root' ? { name: 'root', uid: 0, gid: 0 } : undefined);
    if (!entry) {
      throw new KilnError('USER_NOT_FOUND', `unable to find user ${userPart}: no matching entries in passwd file`, {
        hint: `Create the user in an earlier step (e.g. RUN useradd ${userPart}) or use a numeric uid.`,
      });
    }
    uid = entry.uid;
    gid = entry.gid;
    name = entry.name;
  }

  if (groupPart !== undefined) {
    if (groupPart === '') throw new KilnError('USER_INVALID', `Cannot resolve USER "${spec}": the group is empty`);
    if (isId(groupPart)) {
      gid = Number(groupPart);
    } else {
      const g = groups.find((e) => e.name === groupPart) ?? (groupPart === 'root' ? { name: 'root', gid: 0, members: [] } : undefined);
      if (!g) {
        throw new KilnError('GROUP_NOT_FOUND', `unable to find group ${groupPart}: no matching entries in group file`, {
          hint: `Create the group in an earlier step (e.g. RUN groupadd ${groupPart}) or use a numeric gid.`,
        });
      }
      gid = g.gid;
    }
    return { uid, gid, additionalGids: [] };
  }

  const additional: number[] = [];
  if (name !== undefined) {
    for (const g of groups) {
      if (g.members.includes(name) && g.gid !== gid && !additional.includes(g.gid)) additional.push(g.gid);
    }
  }
  return { uid, gid, additionalGids: additional };
}

const MAX_ID = 0xfffffffe;

function isId(s: string): boolean {
  return /^[0-9]+$/.test(s) && Number(s) <= MAX_ID;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home?: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !isId(f[2]!) || !isId(f[3]!)) continue;
    const e: PasswdEntry = { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) };
    if (f[5]) e.home = f[5];
    out.push(e);
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !isId(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

const MAX_DB_BYTES = 16 * 1024 * 1024;

/**
 * Read a small regular file at `path` inside the rootfs, or "" when it does
 * not exist. Refuses devices and FIFOs (O_NONBLOCK + fstat), so a hostile
 * rootfs cannot make kiln hang or read a host device.
 */
export async function readRootfsFile(rootfs: string, path: string): Promise<string> {
  const host = await resolveInRoot(rootfs, path);
  let fh;
  try {
    fh = await open(host, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return '';
    throw new KilnError('ROOTFS_READ', `Cannot read "${path}" in the rootfs: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new KilnError('ROOTFS_READ', `Cannot read "${path}" in the rootfs: not a regular file`);
    if (st.size > MAX_DB_BYTES) throw new KilnError('ROOTFS_READ', `Cannot read "${path}" in the rootfs: larger than ${MAX_DB_BYTES} bytes`);
    return (await fh.readFile()).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** The home directory of `uid` in the rootfs's /etc/passwd, "/" when it has none (as runc). */
export async function homeOf(rootfs: string, uid: number): Promise<string> {
  const entry = parsePasswd(await readRootfsFile(rootfs, '/etc/passwd')).find((p) => p.uid === uid);
  return entry?.home?.startsWith('/') ? entry.home : '/';
}
