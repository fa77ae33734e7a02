import type { EntryType } from './tar-header.js';

/**
 * The `user.containers.override_stat` xattr of containers/storage and
 * fuse-overlayfs: "uid:gid:0mode[:type]", type one of file, dir, symlink,
 * pipe, socket, block-M-m, char-M-m. Single-id rootless kiln records
 * ownership (and device nodes it cannot create) here.
 */
export const OVERRIDE_STAT_XATTR = 'user.containers.override_stat';

export interface OverrideStat {
  uid: number;
  gid: number;
  mode: number;
  type?: EntryType | 'socket';
  devmajor?: number;
  devminor?: number;
}

const TYPE_WORD: Partial<Record<EntryType, string>> = { file: 'file', dir: 'dir', symlink: 'symlink', fifo: 'pipe' };

export function formatOverrideStat(o: OverrideStat): Buffer {
  let s = `${o.uid}:${o.gid}:0${(o.mode & 0o7777).toString(8)}`;
  if (o.type === 'char' || o.type === 'block') s += `:${o.type}-${o.devmajor ?? 0}-${o.devminor ?? 0}`;
  else if (o.type === 'symlink' || o.type === 'fifo') s += `:${TYPE_WORD[o.type]}`;
  return Buffer.from(s, 'latin1');
}

/** Parse; undefined when the value is not in the expected shape. */
export function parseOverrideStat(value: Buffer): OverrideStat | undefined {
  const m = /^(\d+):(\d+):([0-7]+)(?::(file|dir|symlink|pipe|socket|(block|char)-(\d+)-(\d+)))?$/.exec(value.toString('latin1').trim());
  if (!m) return undefined;
  const out: OverrideStat = { uid: Number(m[1]), gid: Number(m[2]), mode: parseInt(m[3]!, 8) & 0o7777 };
  if (m[5]) {
    out.type = m[5] as 'block' | 'char';
    out.devmajor = Number(m[6]);
    out.devminor = Number(m[7]);
  } else if (m[4]) out.type = m[4] === 'pipe' ? 'fifo' : (m[4] as 'file' | 'dir' | 'symlink' | 'socket');
  return out;
}
