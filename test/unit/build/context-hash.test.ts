/** ContextHasher: the persistent (size, mtime, ctime, inode) index never hides a change and is pruned of deleted files. */
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ContextHasher } from '../../../src/build/context-hash.js';

async function setup(): Promise<{ ctx: string; cache: string }> {
  const base = await mkdtemp(join(tmpdir(), 'kiln-ctxhash-unit-'));
  const ctx = join(base, 'ctx');
  await mkdir(join(ctx, 'src', 'sub'), { recursive: true });
  for (let i = 0; i < 5; i++) await writeFile(join(ctx, 'src', `f${i}.txt`), `file ${i}\n`);
  await writeFile(join(ctx, 'src', 'sub', 'g.txt'), 'g\n');
  await writeFile(join(ctx, 'other.txt'), 'other\n');
  return { ctx, cache: join(base, 'cache') };
}

async function indexPaths(cache: string): Promise<string[]> {
  const dir = join(cache, 'context-index');
  const name = (await readdir(dir)).find((n) => n.endsWith('.v2.json'));
  const flat = JSON.parse(await readFile(join(dir, name!), 'utf8')) as string[];
  return flat.filter((_, i) => i % 3 === 0).sort();
}

test('same content → same digest across hashers; a same-size edit misses the index', async () => {
  const { ctx, cache } = await setup();
  const h1 = new ContextHasher(cache, ctx);
  const a = await h1.hashSelection(ctx, ['src/']);
  await h1.save();
  assert.ok(a.files, 'a first hash lists its files');
  const h2 = new ContextHasher(cache, ctx);
  const b = await h2.hashSelection(ctx, ['src/']);
  assert.is(b.digest, a.digest);
  assert.is(b.files, undefined, 'an unchanged selection is answered by the memo, without per-file work');
  assert.equal(await h2.filesOf(b.digest), a.files, 'the per-file list is kept once per selection');
  // Same size, mtime forced back to the old value: ctime still moves, so neither memo nor index may answer.
  const f = join(ctx, 'src', 'f2.txt');
  await writeFile(f, 'FILE 2\n');
  const old = new Date(Date.now() - 60_000);
  await utimes(f, old, old);
  const h3 = new ContextHasher(cache, ctx);
  const c = await h3.hashSelection(ctx, ['src/']);
  assert.is.not(c.digest, a.digest);
  assert.ok(c.files);
  assert.is.not(c.files['src/f2.txt'], a.files['src/f2.txt']);
  assert.is(c.files['src/f1.txt'], a.files['src/f1.txt']);
  await rm(join(ctx, '..'), { recursive: true, force: true });
});

test('a touched file (new ctime, same bytes) misses the memo but keeps the digest; a mode change does not', async () => {
  const { ctx, cache } = await setup();
  const h1 = new ContextHasher(cache, ctx);
  const a = await h1.hashSelection(ctx, ['src/']);
  await h1.save();
  const f = join(ctx, 'src', 'f3.txt');
  await writeFile(f, 'file 3\n');
  const h2 = new ContextHasher(cache, ctx);
  const b = await h2.hashSelection(ctx, ['src/']);
  await h2.save();
  assert.ok(b.files, 'the memo did not answer for a touched file');
  assert.is(b.digest, a.digest);
  await chmod(f, 0o600);
  const c = await new ContextHasher(cache, ctx).hashSelection(ctx, ['src/']);
  assert.is.not(c.digest, a.digest);
  await rm(join(ctx, '..'), { recursive: true, force: true });
});

test('the memo keeps a bounded number of selections and drops the file lists it forgets', async () => {
  const { ctx, cache } = await setup();
  const digests: string[] = [];
  for (let i = 0; i < 70; i++) {
    await writeFile(join(ctx, 'src', 'f0.txt'), `version ${i}\n`);
    const h = new ContextHasher(cache, ctx);
    digests.push((await h.hashSelection(ctx, ['src/'])).digest);
    await h.save();
  }
  const h = new ContextHasher(cache, ctx);
  assert.is(await h.filesOf(digests[0]!), undefined, 'the oldest list was dropped');
  assert.ok(await h.filesOf(digests[69]!), 'the newest list is kept');
  assert.ok((await readdir(join(cache, 'selections'))).length <= 64);
  await rm(join(ctx, '..'), { recursive: true, force: true });
});

test('save prunes deleted files under walked directories and keeps other selections', async () => {
  const { ctx, cache } = await setup();
  const h1 = new ContextHasher(cache, ctx);
  await h1.hashSelection(ctx, ['src/']);
  await h1.hashSelection(ctx, ['other.txt']);
  await h1.save();
  assert.equal(await indexPaths(cache), [
    join(ctx, 'other.txt'),
    ...[0, 1, 2, 3, 4].map((i) => join(ctx, 'src', `f${i}.txt`)),
    join(ctx, 'src', 'sub', 'g.txt'),
  ].sort());
  await rm(join(ctx, 'src', 'sub'), { recursive: true });
  await rm(join(ctx, 'src', 'f4.txt'));
  await writeFile(join(ctx, 'src', 'f0.txt'), 'changed\n');
  const h2 = new ContextHasher(cache, ctx);
  await h2.hashSelection(ctx, ['src/']);
  await h2.save();
  assert.equal(await indexPaths(cache), [join(ctx, 'other.txt'), ...[0, 1, 2, 3].map((i) => join(ctx, 'src', `f${i}.txt`))].sort());
  await rm(join(ctx, '..'), { recursive: true, force: true });
});

test('an unreadable index is ignored, not trusted', async () => {
  const { ctx, cache } = await setup();
  const ref = await new ContextHasher(cache, ctx).hashSelection(ctx, ['src/']);
  const h1 = new ContextHasher(cache, ctx);
  await h1.hashSelection(ctx, ['src/']);
  await h1.save();
  const dir = join(cache, 'context-index');
  for (const name of await readdir(dir)) await writeFile(join(dir, name), '{"not": "an array"');
  const again = await new ContextHasher(cache, ctx).hashSelection(ctx, ['src/']);
  assert.is(again.digest, ref.digest);
  await rm(join(ctx, '..'), { recursive: true, force: true });
});

test.run();
