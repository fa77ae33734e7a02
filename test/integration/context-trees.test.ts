// dockerignore/context-trees.json: build each context tree in a temp dir, compute the filtered
// context (BuildKit/fsutil rules), compare with the expected listing / presence / error, and copy
// it for real (what `COPY . /dst` puts in place) to check the copy holds exactly the listing.
// ctx-025 follows BuildKit where Buildah differs (see the case's note); no case is skipped.
import { lstatSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conformanceRoot } from '../helpers/repo.js';
import { CaseCounter } from '../helpers/case-counter.js';
import {
  type ContextEntry,
  copyContext,
  formatContextListing,
  listContext,
  loadBuildContext,
  readContextIgnore,
} from '../../src/build/build-context.js';
import { DockerignoreError } from '../../src/dockerfile/dockerignore.js';
import { KilnError } from '../../src/errors.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const data = JSON.parse(await readFile(join(conformanceRoot, 'dockerignore', 'context-trees.json'), 'utf8'));
const test = suite('context-trees');
const counter = new CaseCounter('context-trees');
let scratch = '';

test.before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kiln-ctx-'));
});
test.after(async () => {
  await rm(scratch, { recursive: true, force: true });
  counter.report();
});

async function makeTree(root: string, files: Record<string, any>): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const [rel, spec] of Object.entries(files)) {
    const p = join(root, rel);
    await mkdir(dirname(p), { recursive: true });
    if (typeof spec === 'string') await writeFile(p, spec);
    else if (spec.type === 'dir') await mkdir(p, { recursive: true });
    else if (spec.type === 'symlink') await symlink(spec.target, p);
    else throw new Error(`unknown file spec for ${rel}`);
  }
}

/** Every path under root (lstat, no following), for comparing a copy with the listing. */
async function treeListing(root: string): Promise<string[]> {
  return formatContextListing(await listContext(root));
}

for (const c of data.cases as any[]) {
  counter.add(test, 'context-trees.json', `${c.id}${c.derived ? ' (derived)' : ''}`, async () => {
    const root = join(scratch, c.id, 'ctx');
    await makeTree(root, c.files);
    if (c.ignoreFile && !(c.ignoreFile in c.files)) await writeFile(join(root, c.ignoreFile), c.ignoreText);

    const run = async (): Promise<ContextEntry[]> => {
      if (c.excludePatterns) return listContext(root, { patterns: c.excludePatterns });
      const dockerfile = join(root, c.dockerfileName ?? 'Dockerfile');
      const ignore = await readContextIgnore(root, dockerfile);
      // ctx-010/011: the ignore file beside the Dockerfile given with -f is the one used.
      assert.is(ignore.file, join(root, c.ignoreFile));
      return (await loadBuildContext(root, dockerfile)).entries;
    };

    if (c.expectError !== undefined) {
      try {
        await run();
        assert.unreachable('expected the walk to fail');
      } catch (e) {
        if (!(e instanceof DockerignoreError)) throw e;
        assert.ok(e.message.includes(c.expectError), `${e.message} lacks ${c.expectError}`);
      }
      return;
    }

    const entries = await run();
    const listing = formatContextListing(entries);
    if (c.expectListing) assert.equal(listing, c.expectListing);

    // The real copy holds exactly the listing.
    const dest = join(scratch, c.id, 'dst');
    await mkdir(dest, { recursive: true });
    const patterns = c.excludePatterns ?? (await readContextIgnore(root, join(root, c.dockerfileName ?? 'Dockerfile'))).patterns;
    await copyContext(root, dest, { patterns });
    assert.equal(await treeListing(dest), listing);

    const paths = new Set(entries.map((e) => e.path));
    for (const p of c.expectPresent ?? []) {
      assert.ok(paths.has(p), `${p} should be in the context`);
      assert.ok(lstatSync(join(dest, p), { throwIfNoEntry: false }), `${p} should be copied`);
    }
    for (const p of c.expectAbsent ?? []) {
      assert.not.ok(paths.has(p), `${p} should not be in the context`);
      assert.is(lstatSync(join(dest, p), { throwIfNoEntry: false }), undefined, `${p} should not be copied`);
    }
  });
}

test('copyContext keeps file modes, mtimes and symlink targets', async () => {
  const root = join(scratch, 'modes', 'ctx');
  await makeTree(root, { 'bin/run': '#!/bin/sh\n', 'link': { type: 'symlink', target: 'bin/run' } });
  const { chmod, utimes, readlink, stat } = await import('node:fs/promises');
  await chmod(join(root, 'bin/run'), 0o751);
  await utimes(join(root, 'bin/run'), 1_000_000, 1_000_000);
  const dest = join(scratch, 'modes', 'dst');
  await mkdir(dest, { recursive: true });
  await copyContext(root, dest);
  const st = await stat(join(dest, 'bin/run'));
  assert.is(st.mode & 0o7777, 0o751);
  assert.is(Math.round(st.mtimeMs / 1000), 1_000_000);
  assert.is(await readlink(join(dest, 'link')), 'bin/run');
});

test('hard-linked context files stay hard-linked in the copy', async () => {
  const root = join(scratch, 'hardlinks', 'ctx');
  await makeTree(root, { 'a/one': 'same inode' });
  const { link, stat } = await import('node:fs/promises');
  await link(join(root, 'a/one'), join(root, 'two'));
  const entries = await listContext(root);
  assert.is(entries.find((e) => e.path === 'two')?.hardlinkOf, 'a/one');
  const dest = join(scratch, 'hardlinks', 'dst');
  await mkdir(dest, { recursive: true });
  await copyContext(root, dest);
  const [s1, s2] = [await stat(join(dest, 'a/one')), await stat(join(dest, 'two'))];
  assert.is(s1.ino, s2.ino);
  assert.is(s1.nlink, 2);
});

test('a context directory that cannot be read is an error naming it', async () => {
  const missing = join(scratch, 'no-such-context');
  await listContext(missing).then(
    () => assert.unreachable('expected an error'),
    (e) => {
      assert.instance(e, KilnError);
      assert.is((e as KilnError).code, 'CONTEXT_UNREADABLE');
    },
  );
});

test.run();
