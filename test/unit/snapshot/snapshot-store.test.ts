import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SnapshotStore, snapshotDirName } from '../../../src/snapshot/snapshot-store.js';

test('snapshotDirName keeps plain tokens and hashes everything else', () => {
  const chain = 'sha256:' + 'a'.repeat(64);
  assert.is(snapshotDirName(chain), chain);
  assert.is(snapshotDirName('step-1'), 'step-1');
  for (const odd of ['../escape', 'a/b', '.hidden', 'x'.repeat(200), 'with space', 'comma,', '']) {
    if (odd === '') {
      assert.throws(() => snapshotDirName(odd));
      continue;
    }
    const n = snapshotDirName(odd);
    assert.match(n, /^%[0-9a-f]{64}$/, odd);
  }
  assert.is.not(snapshotDirName('a/b'), snapshotDirName('a/c'));
});

test('init removes temp dirs and active snapshots of dead processes, keeps live ones', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-store-'));
  try {
    const store = new SnapshotStore(dir, 'copy');
    await store.init(async () => undefined);
    await mkdir(join(dir, '.tmp', '999999999-dead'));
    await mkdir(join(dir, '.tmp', `${process.pid}-mine`));
    const dead = join(dir, '.active', 'deadbeef');
    await mkdir(dead);
    await writeFile(join(dead, 'meta.json'), JSON.stringify({ key: 'k', parent: null, kind: 'copy', owner: `999999999@${(await import('node:os')).hostname()}`, created: '' }));
    const dropped: string[] = [];
    await new SnapshotStore(dir, 'copy').init(async (key, d) => {
      dropped.push(key);
      await rm(d, { recursive: true });
    });
    assert.equal(await readdir(join(dir, '.tmp')), [`${process.pid}-mine`]);
    assert.equal(dropped, ['k']);
    assert.equal(await readdir(join(dir, '.active')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('publish: parent must exist, meta records the chain depth, loser of a race builds nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-store-'));
  try {
    const store = new SnapshotStore(dir, 'overlay');
    await store.init(async () => undefined);
    await store.publish('child', 'missing', async () => undefined).then(
      () => assert.unreachable(),
      (e: { code: string }) => assert.is(e.code, 'SNAPSHOT_NOT_FOUND'),
    );
    let builds = 0;
    const build = async (tmp: string) => {
      builds++;
      await mkdir(join(tmp, 'fs'));
    };
    assert.equal(await Promise.all([store.publish('a', undefined, build), store.publish('a', undefined, build)]).then((r) => r.sort()), [false, true]);
    assert.is(builds, 1);
    assert.ok(await store.publish('b', 'a', build));
    assert.ok(await store.publish('c', 'b', build));
    const chain = await store.chain('c');
    assert.equal(chain.map((m) => [m.id, m.parent, m.depth]), [
      ['c', 'b', 3],
      ['b', 'a', 2],
      ['a', null, 1],
    ]);
    assert.equal(await readdir(join(dir, '.tmp')), []);
    await store.assertUnused('c');
    await store.assertUnused('a').then(
      () => assert.unreachable(),
      (e: { code: string; message: string }) => {
        assert.is(e.code, 'SNAPSHOT_IN_USE');
        assert.match(e.message, /"b"/);
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('publish: when another writer got there first despite the lock, its snapshot stands', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-store-'));
  try {
    const store = new SnapshotStore(dir, 'copy');
    await store.init(async () => undefined);
    const other = new SnapshotStore(dir, 'copy');
    const won = await store.publish('x', undefined, async (tmp) => {
      await mkdir(join(tmp, 'fs'));
      // a second writer that broke our lock (as if stale) publishes while we build
      await rm(join(dir, '.locks', 'x.lock'));
      assert.ok(
        await other.publish('x', undefined, async (t2) => {
          await mkdir(join(t2, 'fs'));
          await writeFile(join(t2, 'fs', 'who'), 'other');
        }),
      );
    });
    assert.is(won, false);
    assert.equal(await readdir(join(dir, 'x', 'fs')), ['who']);
    assert.equal(await readdir(join(dir, '.tmp')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
