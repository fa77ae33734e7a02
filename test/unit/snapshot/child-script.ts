/**
 * A separate process for snapshot tests that need one (cross-process races, a crash that
 * leaves a mount behind, running inside a user namespace). Usage:
 *   node child-script.js '<json>'   with json = { op, root, kind?, ... }
 * Prints one JSON line with its result on stdout.
 */
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSnapshotter, overlaySupport, unmountAllSync } from '../../../src/snapshot/index.js';
import { sh } from './fs-helpers.js';

interface Args {
  op: 'race' | 'hang' | 'exit' | 'sigterm' | 'userns' | 'unprivileged' | 'fresh-base' | 'fresh-try';
  root: string;
  kind?: 'auto' | 'overlay' | 'copy';
  id?: string;
  log?: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

if (args.op === 'race') {
  const s = await createSnapshotter({ root: args.root, kind: args.kind ?? 'auto' });
  await s.createCommitted(args.id!, undefined, async (dir) => {
    await appendFile(args.log!, `${process.pid}\n`);
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(dir, 'by'), String(process.pid));
  });
  out({ ok: true, by: await readFile(join(args.root, 'snapshots', s.kind, args.id!, 'fs', 'by'), 'utf8') });
} else if (args.op === 'hang') {
  const s = await createSnapshotter({ root: args.root, kind: args.kind ?? 'auto' });
  await s.createCommitted('base', undefined, (dir) => writeFile(join(dir, 'f'), 'f'));
  const r = await s.prepare('hanging', 'base');
  out({ path: r.path });
  setInterval(() => undefined, 1000);
} else if (args.op === 'sigterm') {
  // What the CLI does on SIGTERM/SIGINT: unmount synchronously, then exit.
  process.on('SIGTERM', () => {
    unmountAllSync();
    process.exit(143);
  });
  const s = await createSnapshotter({ root: args.root, kind: args.kind ?? 'auto' });
  await s.createCommitted('base', undefined, (dir) => writeFile(join(dir, 'f'), 'f'));
  const r = await s.prepare('interrupted', 'base');
  out({ path: r.path });
  setInterval(() => undefined, 1000);
} else if (args.op === 'exit') {
  // Prepares and exits without release: the exit hook must unmount.
  const s = await createSnapshotter({ root: args.root, kind: args.kind ?? 'auto' });
  await s.createCommitted('base', undefined, (dir) => writeFile(join(dir, 'f'), 'f'));
  const r = await s.prepare('forgotten', 'base');
  out({ path: r.path });
  process.exit(0);
} else if (args.op === 'unprivileged') {
  // No namespace, no privilege (kiln inside an unprivileged container): auto must pick copy.
  const s = await createSnapshotter({ root: args.root, kind: 'auto' });
  await s.createCommitted('base', undefined, async (dir) => {
    await mkdir(join(dir, 'etc/sub'), { recursive: true });
    await writeFile(join(dir, 'etc/passwd'), 'root');
    await writeFile(join(dir, 'etc/sub/old'), 'old');
  });
  const r = await s.prepare('step', 'base');
  await writeFile(join(r.path, 'etc/passwd'), 'root2');
  await rm(join(r.path, 'etc/sub'), { recursive: true });
  await writeFile(join(r.path, 'new'), 'new');
  const { changes } = await s.changes('step');
  await r.release();
  await s.commit('step', 'step1');
  out({ kind: s.kind, reason: s.reason, changes, exists: await s.exists('step1') });
} else if (args.op === 'userns') {
  // Rootless: this runs as an unprivileged user inside `unshare --user --map-root-user --mount`.
  const support = await overlaySupport(join(args.root, 'probe'));
  const s = await createSnapshotter({ root: args.root, kind: 'auto' });
  await s.createCommitted('base', undefined, async (dir) => {
    await mkdir(join(dir, 'etc/sub'), { recursive: true });
    await writeFile(join(dir, 'etc/passwd'), 'root');
    await writeFile(join(dir, 'etc/group'), 'root');
    await writeFile(join(dir, 'etc/sub/old'), 'old');
  });
  await s.createCommitted('layer2', 'base', async (dir, mode, info) => {
    await mkdir(join(dir, 'etc/sub'), { recursive: true });
    await sh(['mknod', join(dir, 'etc/group'), 'c', '0', '0']);
    await sh(['setfattr', '-n', info.opaqueXattr, '-v', 'y', join(dir, 'etc/sub')]);
    await writeFile(join(dir, 'etc/sub/new'), 'new');
  });
  const r = await s.prepare('step', 'layer2');
  const view = { etc: (await readdir(join(r.path, 'etc'))).sort(), sub: (await readdir(join(r.path, 'etc/sub'))).sort() };
  await rm(join(r.path, 'etc/passwd'));
  await rm(join(r.path, 'etc/sub'), { recursive: true });
  await mkdir(join(r.path, 'etc/sub'));
  await writeFile(join(r.path, 'etc/sub/again'), 'again');
  const { changes } = await s.changes('step');
  const mountsDuring = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(args.root)).length;
  await s.commit('step', 'step1');
  const mountsAfter = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(args.root)).length;
  out({ support, kind: s.kind, uid: process.getuid?.(), view, changes, mountsDuring, mountsAfter, active: await readdir(join(args.root, 'snapshots', s.kind, '.active')) });
} else if (args.op === 'fresh-base') {
  // A committed one-layer snapshot with /usr/share (whose owner the test then changes from outside).
  const s = await createSnapshotter({ root: args.root, kind: 'overlay' });
  await s.createCommitted('base', undefined, async (dir) => {
    await mkdir(join(dir, 'usr/share'), { recursive: true });
  });
  out({ ok: true });
} else if (args.op === 'fresh-try') {
  // prepareFresh below /usr, whose owner the namespace may not be able to set.
  const s = await createSnapshotter({ root: args.root, kind: 'overlay' });
  const fresh = await s.prepareFresh!('fresh', 'base', '/usr/new');
  out({ fresh: fresh === undefined ? null : fresh.path, active: await readdir(join(args.root, 'snapshots', 'overlay', '.active')) });
}
