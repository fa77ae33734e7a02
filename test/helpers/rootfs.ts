/**
 * A small busybox rootfs for sandbox tests, built from Debian's busybox-static
 * (/bin/busybox): /bin/busybox plus one symlink per applet, /etc/passwd
 * (root, daemon(1), nobody(65534)), /etc/group (root, daemon, wheel(10) with
 * root as member, nobody), /tmp 1777, /root 0700. No /etc/hosts, no
 * /etc/resolv.conf, no /proc, no /dev: the sandbox must supply them.
 *
 *   const root = await makeRootfs();      // fresh dir under os.tmpdir()
 *   await rm(root, { recursive: true, force: true });
 */
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BUSYBOX = '/bin/busybox';

let applets: string[] | undefined;

export async function makeRootfs(dir?: string): Promise<string> {
  const root = dir ?? (await mkdtemp(join(tmpdir(), 'kiln-rootfs-')));
  await mkdir(root, { recursive: true });
  await chmod(root, 0o755);
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'tmp'), { recursive: true });
  await mkdir(join(root, 'root'), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  await chmod(join(root, 'root'), 0o700);
  await copyFile(BUSYBOX, join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  applets ??= execFileSync(BUSYBOX, ['--list']).toString().split('\n').filter((a) => a && a !== 'busybox' && !a.includes('/'));
  await Promise.all(applets.map((a) => symlink('busybox', join(root, 'bin', a))));
  await writeFile(
    join(root, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  );
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\ndaemon:x:1:\nwheel:x:10:root\nnobody:x:65534:\n');
  return root;
}
