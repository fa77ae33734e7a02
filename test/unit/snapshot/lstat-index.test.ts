import { chmod, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sh } from './fs-helpers.js';
import { buildIndex, diffIndex, loadIndex, saveIndex } from '../../../src/snapshot/lstat-index.js';

async function tree(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-idx-'));
  await mkdir(join(dir, 'a/b'), { recursive: true });
  await writeFile(join(dir, 'a/b/f'), 'one');
  await writeFile(join(dir, 'a/g'), 'two');
  await writeFile(join(dir, 'top'), 'top');
  return dir;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an index survives a save/load round trip (bigint times and inodes)', async () => {
  const dir = await tree();
  try {
    const { index, maxCtime } = await buildIndex(dir);
    assert.ok(maxCtime > 0n);
    const file = `${dir}.json`;
    await saveIndex(file, index);
    assert.equal(await loadIndex(file), index);
    assert.equal(index.get('a')!.children!.sort(), ['b', 'g']);
    await rm(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('diffIndex: unchanged tree → nothing; rename within the tree → delete + add; mtime put back still seen', async () => {
  const dir = await tree();
  try {
    const { index } = await buildIndex(dir);
    await sleep(25);
    assert.equal(await diffIndex(dir, index), []);
    await rename(join(dir, 'a/g'), join(dir, 'a/b/g'));
    const before = (await stat(join(dir, 'top'), { bigint: true })).mtimeNs;
    await writeFile(join(dir, 'top'), 'TOP'); // same size, then the old mtime put back to the ns
    await sh(['touch', '-m', '-d', `@${before / 1_000_000_000n}.${String(before % 1_000_000_000n).padStart(9, '0')}`, join(dir, 'top')]);
    assert.is((await stat(join(dir, 'top'), { bigint: true })).mtimeNs, before);
    const changes = await diffIndex(dir, index);
    assert.equal(
      changes.map((c) => `${c.kind} ${c.path}`),
      ['modify a', 'modify a/b', 'add a/b/g', 'delete a/g', 'modify top'],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('diffIndex: a directory replaced by a new inode is opaque and listed whole', async () => {
  const dir = await tree();
  try {
    const { index } = await buildIndex(dir);
    await sleep(25);
    await mkdir(join(dir, 'a2/b'), { recursive: true });
    await writeFile(join(dir, 'a2/b/new'), 'new');
    await rm(join(dir, 'a'), { recursive: true });
    await rename(join(dir, 'a2'), join(dir, 'a'));
    await chmod(join(dir, 'a'), 0o700);
    const changes = await diffIndex(dir, index);
    assert.equal(changes, [
      { kind: 'modify', path: 'a', opaque: true },
      { kind: 'add', path: 'a/b' },
      { kind: 'add', path: 'a/b/new' },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('diffIndex: a directory emptied and refilled in place (same inode) is opaque; a partly emptied one lists deletes', async () => {
  const dir = await tree();
  try {
    const { index } = await buildIndex(dir);
    await sleep(25);
    await rm(join(dir, 'a/b'), { recursive: true });
    await rm(join(dir, 'a/g'));
    await writeFile(join(dir, 'a/h'), 'new');
    await rm(join(dir, 'top'));
    const changes = await diffIndex(dir, index);
    assert.equal(changes, [
      { kind: 'modify', path: 'a', opaque: true },
      { kind: 'add', path: 'a/h' },
      { kind: 'delete', path: 'top' },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
