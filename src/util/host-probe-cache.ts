import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir, release } from 'node:os';
import { join } from 'node:path';

/**
 * Host probes (can this user create a user namespace, does bwrap work, which
 * libraries the setpriv helper needs, can overlay be mounted on a filesystem)
 * remembered across kiln processes, as a daemon remembers them between builds.
 * They cost ~50 ms of spawned processes per build otherwise.
 *
 * One JSON file per user: $XDG_CACHE_HOME/kiln/host-probes.json (~/.cache by
 * default). An entry is used only while everything its probe depends on is
 * unchanged: the boot, the effective uid/gid, the user and mount namespaces
 * (so a nested sandbox or container probes for itself), the kernel release, and
 * the caller's key (the probed binaries' identity, a filesystem's device).
 * Only successes are kept: a failure is probed again, with its real error. A
 * file not owned by this user is ignored. KILN_NO_PROBE_CACHE=1, or
 * disableProbeCache() (kiln doctor), turns it off.
 */

interface Entry {
  key: string;
  value: unknown;
}

let disabled = process.env.KILN_NO_PROBE_CACHE === '1';
let loaded: Record<string, Entry> | undefined;
let baseKey: string | undefined;

/** Probe for real from now on (kiln doctor reports what it sees, not what it saw). */
export function disableProbeCache(): void {
  disabled = true;
}

function cacheFile(): string | undefined {
  const xdg = process.env.XDG_CACHE_HOME;
  let base: string;
  if (xdg && xdg.startsWith('/')) base = xdg;
  else {
    try {
      base = join(homedir(), '.cache');
    } catch {
      return undefined;
    }
  }
  return join(base, 'kiln', 'host-probes.json');
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function link(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function base(): string {
  baseKey ??= JSON.stringify([
    read('/proc/sys/kernel/random/boot_id') ?? 'no-boot-id',
    process.geteuid?.() ?? -1,
    process.getegid?.() ?? -1,
    link('/proc/self/ns/user') ?? '',
    link('/proc/self/ns/mnt') ?? '',
    release(),
    process.env.KILN_BUILD_NS ?? '',
  ]);
  return baseKey;
}

function entries(path: string): Record<string, Entry> {
  if (loaded) return loaded;
  loaded = {};
  try {
    const st = statSync(path);
    if (st.uid === (process.geteuid?.() ?? st.uid)) {
      const data = JSON.parse(readFileSync(path, 'utf8')) as unknown;
      if (data && typeof data === 'object' && !Array.isArray(data)) loaded = data as Record<string, Entry>;
    }
  } catch {
    // No cache yet, or unreadable: probe.
  }
  return loaded;
}

function save(path: string, all: Record<string, Entry>): void {
  try {
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(all), { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    // A read-only or missing home: nothing is remembered, every build probes.
  }
}

/** A file's identity for a key: path, inode, size and mtime ("-" when missing). */
export function fileIdentity(path: string | undefined): string {
  if (!path) return '-';
  try {
    const st = statSync(path);
    return `${path}:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return `${path}:-`;
  }
}

/**
 * `probe()`'s result, from the cache when an entry named `name` was stored
 * under the same key (and `stillValid` accepts it), else probed now and stored
 * when `keep` says it is a success.
 */
export async function cachedProbe<T>(
  name: string,
  key: unknown[],
  probe: () => Promise<T>,
  opts: { keep: (value: T) => boolean; stillValid?: (value: T) => boolean },
): Promise<T> {
  const path = disabled ? undefined : cacheFile();
  if (!path) return probe();
  const digest = createHash('sha256').update(base()).update('\0').update(JSON.stringify(key)).digest('hex');
  const hit = entries(path)[name];
  if (hit && hit.key === digest && (!opts.stillValid || opts.stillValid(hit.value as T))) return hit.value as T;
  const value = await probe();
  if (opts.keep(value)) {
    // Re-read before writing: another kiln process may have stored other probes meanwhile.
    loaded = undefined;
    const all = { ...entries(path), [name]: { key: digest, value } };
    loaded = all;
    save(path, all);
  }
  return value;
}
