import { rm, symlink, writeFile, mkdtemp, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KilnError } from '../../../src/errors.js';
import { resolveUser } from '../../../src/sandbox/user.js';
import { makeRootfs } from '../../helpers/rootfs.js';

let root: string;
test.before(async () => {
  root = await makeRootfs();
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\ndaemon:x:1:\nwheel:x:10:root,app\napp:x:1000:\naudio:x:29:app\nnobody:x:65534:\n');
});
test.after(() => rm(root, { recursive: true, force: true }));

test('empty USER is root', async () => {
  assert.equal(await resolveUser(root, ''), { uid: 0, gid: 0, additionalGids: [] });
});

test('a name gets its passwd gid and the groups that list it', async () => {
  assert.equal(await resolveUser(root, 'app'), { uid: 1000, gid: 1000, additionalGids: [10, 29] });
  assert.equal(await resolveUser(root, 'root'), { uid: 0, gid: 0, additionalGids: [10] });
});

test('a uid found in passwd behaves like its name; an unknown uid gets gid 0', async () => {
  assert.equal(await resolveUser(root, '1000'), { uid: 1000, gid: 1000, additionalGids: [10, 29] });
  assert.equal(await resolveUser(root, '4242'), { uid: 4242, gid: 0, additionalGids: [] });
});

test('an explicit group sets the primary gid and no supplementary groups', async () => {
  assert.equal(await resolveUser(root, 'app:wheel'), { uid: 1000, gid: 10, additionalGids: [] });
  assert.equal(await resolveUser(root, '1000:5000'), { uid: 1000, gid: 5000, additionalGids: [] });
  assert.equal(await resolveUser(root, 'nobody:nobody'), { uid: 65534, gid: 65534, additionalGids: [] });
});

test('"root" works in a rootfs without /etc/passwd (FROM scratch)', async () => {
  const bare = await mkdtemp(join(tmpdir(), 'kiln-user-'));
  try {
    assert.equal(await resolveUser(bare, 'root'), { uid: 0, gid: 0, additionalGids: [] });
    assert.equal(await resolveUser(bare, 'root:root'), { uid: 0, gid: 0, additionalGids: [] });
    assert.equal(await resolveUser(bare, '1000'), { uid: 1000, gid: 0, additionalGids: [] });
  } finally {
    await rm(bare, { recursive: true, force: true });
  }
});

test('unknown names fail with BuildKit\'s words', async () => {
  try {
    await resolveUser(root, 'ghost');
    assert.unreachable();
  } catch (err) {
    assert.instance(err, KilnError);
    assert.is((err as Error).message, 'unable to find user ghost: no matching entries in passwd file');
  }
  try {
    await resolveUser(root, 'app:ghosts');
    assert.unreachable();
  } catch (err) {
    assert.is((err as Error).message, 'unable to find group ghosts: no matching entries in group file');
  }
});

test('/etc/passwd is read inside the rootfs: a symlink to the host file does not leak host users', async () => {
  const r2 = await mkdtemp(join(tmpdir(), 'kiln-user-'));
  try {
    await mkdir(join(r2, 'etc'));
    await symlink('/etc/passwd', join(r2, 'etc/passwd'));
    // Resolves to r2/etc/passwd itself (a loop inside the root) or nothing: never the host's root entry names.
    await resolveUser(r2, 'daemon').then(
      () => assert.unreachable('host passwd was read'),
      (err: Error) => assert.match(err.message, /unable to find user daemon|too many levels/),
    );
    await rm(join(r2, 'etc/passwd'));
    await symlink('../../../../../../etc/passwd', join(r2, 'etc/passwd'));
    await resolveUser(r2, 'daemon').then(
      () => assert.unreachable('host passwd was read'),
      (err: Error) => assert.match(err.message, /unable to find user daemon|too many levels/),
    );
  } finally {
    await rm(r2, { recursive: true, force: true });
  }
});

test.run();
