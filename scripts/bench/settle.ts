/**
 * What a cold run starts from: the state of a runner whose store is empty, not the state of a
 * disk that deleted a store a moment ago.
 *
 * Two leftovers of a reset land in the next timed run on this VM (ext4 without a journal,
 * mounted with `discard`):
 *  - writeback and discards of what the reset wrote and deleted: `sync` flushes them;
 *  - ext4's `recently_deleted()`: without a journal, inode allocation skips inodes freed in the
 *    last 60 s while their inode-table block is in the buffer cache, scanning the whole group's
 *    bitmap for each new file. After a reset deleted an extracted Debian toolchain (~30k inodes),
 *    the next builder spent 8–13 s of kernel time in it (seed: 9.6 s → 18–20 s, `perf` showed
 *    `recently_deleted` under `ext4_create`), whichever builder it was.
 * Dropping the page cache (root only) evicts those inode-table blocks. It also evicts the inputs
 * every builder reads, so they are read back before the timed run: the registry's blobs, the
 * contexts, kiln's code, and the binaries (with their libraries) the builders run.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

/** Binaries some builder runs during a build (missing ones are skipped). */
const BINARIES = [
  'buildah',
  'docker',
  'runc',
  'containerd-shim-runc-v2',
  'bwrap',
  'setpriv',
  'getfattr',
  'setfattr',
  'perl',
  'mount',
  'umount',
  'unshare',
  'sh',
  'bash',
  'tar',
  'gzip',
  'sha256sum',
  'zstd',
  'skopeo',
  'newuidmap',
  'newgidmap',
];

let binaryFiles: string[] | undefined;

/** `paths` of each binary and the shared libraries `ldd` lists for it. */
function binariesWithLibraries(): string[] {
  if (binaryFiles) return binaryFiles;
  const out = new Set<string>([process.execPath]);
  for (const name of BINARIES) {
    let path: string;
    try {
      path = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      continue;
    }
    if (!path.startsWith('/')) continue;
    out.add(path);
    let ldd = '';
    try {
      ldd = execFileSync('ldd', [path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      continue; // static binaries: ldd exits non-zero
    }
    for (const m of ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) out.add(m[1]!);
  }
  binaryFiles = [...out];
  return binaryFiles;
}

/** Drop the page cache; false when this process may not (not root, or /proc read-only). */
function dropPageCache(): boolean {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    return true;
  } catch {
    return false;
  }
}

/** Read every file under `dirs` and every listed file once, to put them back in the page cache. */
function readBack(dirs: string[], files: string[]): void {
  execFileSync('sh', ['-c', 'find "$@" -type f -print0 2>/dev/null | xargs -0 -r cat > /dev/null 2>&1; true', 'rewarm', ...dirs, ...files], {
    stdio: 'ignore',
  });
}

/** Flush a reset's writes and deletions; when root, also clear what ext4 remembers of them. */
export function settle(warmPaths: string[]): void {
  execFileSync('sync', { stdio: 'ignore' });
  if (!dropPageCache()) return;
  readBack(warmPaths, binariesWithLibraries());
}
