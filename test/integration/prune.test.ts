/**
 * `kiln prune` frees snapshots as well as blobs: a removed image's step snapshot goes once no tag
 * and no build-cache record names its chain, a tagged image keeps its whole chain (the shared
 * base snapshot included) and rebuilds from the cache. Real CLI, local registry, busybox fixture.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chainId } from '../../src/build/image-state.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';
import { runKiln } from '../helpers/run-kiln.js';

const t = suite('kiln prune: blobs and snapshots');
let reg: TestRegistry;
let bb: string;
let work: string;
let root: string;

t.before(async () => {
  reg = await startRegistry();
  bb = await pushBusybox(reg);
  work = await mkdtemp(join(tmpdir(), 'kiln-prune-'));
  root = join(work, 'root');
});
t.after(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function kiln(args: string[]) {
  return runKiln(args, { cwd: work, env: { KILN_ROOT: root } });
}

async function build(name: string, dockerfile: string): Promise<{ out: string; err: string }> {
  const dir = join(work, `ctx-${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), dockerfile.replaceAll('BUSYBOX', bb));
  const r = await kiln(['build', '--progress', 'plain', '-t', `example.com/${name}:1`, dir]);
  assert.is(r.code, 0, r.err);
  return r;
}

/** Ids of the committed snapshots on disk, whichever snapshotter kiln picked. */
async function snapshotIds(): Promise<string[]> {
  const ids: string[] = [];
  for (const kind of await readdir(join(root, 'snapshots')).catch(() => [] as string[])) {
    for (const name of await readdir(join(root, 'snapshots', kind))) {
      if (name.startsWith('.')) continue;
      ids.push(JSON.parse(await readFile(join(root, 'snapshots', kind, name, 'meta.json'), 'utf8')).id);
    }
  }
  return ids.sort();
}

async function diffIds(ref: string): Promise<string[]> {
  const r = await kiln(['inspect', ref]);
  assert.is(r.code, 0, r.err);
  return JSON.parse(r.out).config.rootfs.diff_ids;
}

t('rmi + prune frees the image’s snapshots; a tagged image keeps its chain and rebuilds warm', async () => {
  await build('a', 'FROM BUSYBOX\nRUN echo a > /a.txt && dd if=/dev/zero of=/a.bin bs=1024 count=256 2>/dev/null\n');
  await build('b', 'FROM BUSYBOX\nRUN echo b > /b.txt\n');
  const a = await diffIds('example.com/a:1');
  const b = await diffIds('example.com/b:1');
  assert.is(a.length, 2);
  assert.is(b.length, 2);
  assert.is(a[0], b[0]);
  const base = chainId(a.slice(0, 1))!;
  const aTop = chainId(a)!;
  const bTop = chainId(b)!;
  assert.equal(await snapshotIds(), [base, aTop, bTop].sort());

  // Nothing unreferenced yet.
  const p0 = await kiln(['prune']);
  assert.is(p0.code, 0, p0.err);
  assert.match(p0.out, '(0 snapshots; 3 kept)');

  assert.is((await kiln(['rmi', 'example.com/a:1'])).code, 0);
  // A's build-cache record still names its chain: kept (a rebuild of A would hit the cache).
  const p1 = await kiln(['prune']);
  assert.is(p1.code, 0, p1.err);
  assert.match(p1.out, '(0 snapshots; 3 kept)');
  assert.match(p1.out, '(2 blobs;'); // A's manifest and config; its layer is in A's record
  assert.equal(await snapshotIds(), [base, aTop, bTop].sort());

  // Drop A's records (what clearing the build cache does); B's stay.
  const recDir = join(root, 'cache', 'records');
  let dropped = 0;
  for (const name of await readdir(recDir)) {
    const rec = JSON.parse(await readFile(join(recDir, name), 'utf8'));
    if (rec.state.layers.some((l: { diffId: string }) => l.diffId === a[1])) {
      await rm(join(recDir, name));
      dropped++;
    }
  }
  assert.is(dropped, 1);

  const dry = await kiln(['prune', '--dry-run']);
  assert.is(dry.code, 0, dry.err);
  assert.match(dry.out, `Would delete snapshot: ${aTop}`);
  assert.match(dry.out, '(1 snapshots; 2 kept)');
  assert.equal(await snapshotIds(), [base, aTop, bTop].sort());

  const p2 = await kiln(['prune']);
  assert.is(p2.code, 0, p2.err);
  assert.match(p2.out, `Deleted snapshot: ${aTop}`);
  assert.match(p2.out, '(1 snapshots; 2 kept)');
  const freed = /Reclaimed from snapshots: ([\d.]+)(B|kB|MB)/.exec(p2.out);
  assert.ok(freed, p2.out);
  const bytes = Number(freed[1]) * { B: 1, kB: 1e3, MB: 1e6 }[freed[2] as 'B' | 'kB' | 'MB'];
  assert.ok(bytes >= 256 * 1024, `freed ${bytes} bytes: ${p2.out}`);
  assert.match(p2.out, '(1 blobs;'); // A's layer (its manifest and config went with the first prune)
  assert.equal(await snapshotIds(), [base, bTop].sort());
  assert.not.ok(p2.out.includes(`snapshot: ${base}`));

  const v = await kiln(['store', 'verify']);
  assert.is(v.code, 0, v.out + v.err);

  // B rebuilds from the cache and its chain is intact.
  const again = await build('b', 'FROM BUSYBOX\nRUN echo b > /b.txt\n');
  assert.match(again.err + again.out, 'CACHED');
  assert.equal(await diffIds('example.com/b:1'), b);
  assert.equal(await snapshotIds(), [base, bTop].sort());

  // A second prune finds nothing.
  const p3 = await kiln(['prune']);
  assert.match(p3.out, '(0 snapshots; 2 kept)');
});

t.run();
