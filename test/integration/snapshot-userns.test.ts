/**
 * Rootless hosts. An unprivileged user (65534) in its own user+mount namespace
 * (`unshare --user --map-root-user --mount`) mounts overlays with `userxattr`, and the
 * snapshot it commits is a valid overlay layer (0/0 whiteouts, user.overlay.opaque).
 * Without any namespace, the same user gets the copy snapshotter.
 */
import { lstatSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Change } from '../../src/layer/types.js';
import { runChild } from '../unit/snapshot/child.js';
import { kernelHasVolatile, sh } from '../unit/snapshot/fs-helpers.js';

test('overlay works rootless in a user namespace with userxattr', async () => {
  const work = await mkdtemp(join(tmpdir(), 'kiln-userns-'));
  try {
    await chown(work, 65534, 65534);
    const root = join(work, 'root');
    const child = runChild(
      { op: 'userns', root },
      { wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'unshare', '--user', '--map-root-user', '--mount'], timeoutMs: 60_000 },
    );
    const { code, stderr } = await child.exit;
    assert.is(code, 0, stderr);
    const r = JSON.parse((await child.lines)[0]!) as {
      support: { ok: boolean };
      kind: string;
      uid: number;
      view: { etc: string[]; sub: string[] };
      changes: Change[];
      mountsDuring: number;
      mountsAfter: number;
      active: string[];
    };
    assert.equal(r.support, { ok: true, volatile: kernelHasVolatile() });
    assert.is(r.kind, 'overlay');
    assert.is(r.uid, 0, 'root inside the namespace');
    assert.equal(r.view, { etc: ['passwd', 'sub'], sub: ['new'] }, 'lower whiteout and opaque mark are honoured');
    assert.equal(r.changes, [
      { kind: 'modify', path: 'etc' },
      { kind: 'delete', path: 'etc/passwd' },
      { kind: 'modify', path: 'etc/sub', opaque: true },
      { kind: 'add', path: 'etc/sub/again' },
    ]);
    assert.is(r.mountsDuring, 1);
    assert.is(r.mountsAfter, 0);
    assert.equal(r.active, []);
    // Seen from outside: the committed upper dir is owned by the unprivileged user and holds
    // overlay's own records in the user.overlay namespace.
    const fs = join(root, 'snapshots', 'overlay', 'step1', 'fs');
    const wh = lstatSync(join(fs, 'etc/passwd'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is a 0/0 char device');
    assert.is(wh.uid, 65534);
    assert.is((await sh(['getfattr', '--only-values', '-n', 'user.overlay.opaque', join(fs, 'etc/sub')])).trim(), 'y');
  } finally {
    for (const line of (await sh(['cat', '/proc/self/mountinfo'])).split('\n')) if (line.includes(work)) await sh(['umount', '-l', line.split(' ')[4]!]).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
});

test('without privilege or namespaces, auto falls back to the copy snapshotter and says why', async () => {
  const work = await mkdtemp(join(tmpdir(), 'kiln-unpriv-'));
  try {
    await chown(work, 65534, 65534);
    const child = runChild({ op: 'unprivileged', root: join(work, 'root') }, { wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], timeoutMs: 60_000 });
    const { code, stderr } = await child.exit;
    assert.is(code, 0, stderr);
    const r = JSON.parse((await child.lines)[0]!) as { kind: string; reason: string; changes: Change[]; exists: boolean };
    assert.is(r.kind, 'copy');
    assert.match(r.reason, /^overlay unavailable \(test overlay mount failed: .*\); copying instead$/);
    assert.equal(r.changes, [
      { kind: 'modify', path: 'etc' },
      { kind: 'modify', path: 'etc/passwd' },
      { kind: 'delete', path: 'etc/sub' },
      { kind: 'add', path: 'new' },
    ]);
    assert.ok(r.exists);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('rootless: a COPY below a directory whose owner the namespace cannot set falls back to the mount', async () => {
  const work = await mkdtemp(join(tmpdir(), 'kiln-userns-fresh-'));
  try {
    await chown(work, 65534, 65534);
    const root = join(work, 'root');
    const wrapper = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'unshare', '--user', '--map-root-user', '--mount'];
    const inNs = async (op: string) => {
      const child = runChild({ op, root }, { wrapper, timeoutMs: 60_000 });
      const { code, stderr } = await child.exit;
      assert.is(code, 0, stderr);
      return JSON.parse((await child.lines)[0]!) as { fresh: string | null; active: string[] };
    };
    await inNs('fresh-base');
    const first = await inNs('fresh-try');
    assert.ok(first.fresh, 'the namespace owns /usr: no mount needed');
    // Owned by the real root, /usr shows as the overflow id inside: lchown to it fails.
    await chown(join(root, 'snapshots', 'overlay', 'base', 'fs', 'usr'), 0, 0);
    await rm(join(root, 'snapshots', 'overlay', '.active', 'fresh'), { recursive: true, force: true });
    const second = await inNs('fresh-try');
    assert.is(second.fresh, null, 'undefined, so the step mounts instead of failing');
    assert.equal(second.active, [], 'nothing is left behind');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test.run();
