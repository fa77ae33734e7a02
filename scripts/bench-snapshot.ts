/**
 * Snapshotter benchmark: one changed file on top of a ~170 MB Debian rootfs
 * (mmdebstrap --variant=minbase, cached in the fixtures cache), for the overlay and the
 * copy snapshotter side by side. Issue 4 asks: overlay prepare + changes() < 50 ms, i.e. the
 * cost follows what changed, not the size of the rootfs.
 *
 *   npx tsx scripts/bench-snapshot.ts [--runs 10] [--copy-runs 3] [--kinds overlay,copy] [--synthetic] [--out FILE.json]
 *   node dist/scripts/bench-snapshot.js …
 *
 * --synthetic (or a failing mmdebstrap) uses a generated 170 MB tree of ~9000 files instead.
 * Exit status 1 when the overlay median of prepare + changes() is 50 ms or more.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedDir } from './fixtures/fixture-cache.js';
import type { Change } from '../src/layer/types.js';
import { buildIndex } from '../src/snapshot/lstat-index.js';
import { createSnapshotter, type SnapshotterKind } from '../src/snapshot/index.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const runs = Number(flag('--runs') ?? 10);
/** The copy snapshotter copies the whole rootfs per prepare: fewer runs by default. */
const copyRuns = Number(flag('--copy-runs') ?? 3);
const kinds = (flag('--kinds') ?? 'overlay,copy').split(',') as SnapshotterKind[];
const LIMIT_MS = 50;

function du(dir: string): { mb: number; entries: number } {
  const mb = Number(execFileSync('du', ['-sm', dir]).toString().split('\t')[0]);
  const entries = Number(execFileSync('sh', ['-c', `find "$1" | wc -l`, 'sh', dir]).toString().trim()) - 1;
  return { mb, entries };
}

async function debianRootfs(): Promise<string> {
  const dir = await cachedDir('snapshot-bench-debian', ['snapshot-bench-v1', process.arch, 'bookworm', 'minbase'], async (tmp) => {
    execFileSync('mmdebstrap', ['--quiet', '--variant=minbase', '--skip=output/dev', 'bookworm', join(tmp, 'rootfs')], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 30 * 60_000,
      env: { ...process.env, SOURCE_DATE_EPOCH: '0' },
    });
  });
  return join(dir, 'rootfs');
}

/** ~170 MB over ~9000 files in ~600 directories: many small files, some large ones. */
async function syntheticRootfs(): Promise<string> {
  const dir = await cachedDir('snapshot-bench-synthetic', ['synthetic-v1'], async (tmp) => {
    const root = join(tmp, 'rootfs');
    let n = 0;
    for (let d = 0; d < 600; d++) {
      const sub = join(root, `usr/share/d${d % 30}/s${d}`);
      await mkdir(sub, { recursive: true });
      for (let f = 0; f < 15; f++) {
        const size = n % 100 === 0 ? 1_200_000 : 6_000;
        await writeFile(join(sub, `f${f}`), randomBytes(size));
        n++;
      }
    }
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc/hostname'), 'synthetic\n');
  });
  return join(dir, 'rootfs');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `${median(xs).toFixed(1)} ms (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;

interface KindResult {
  kind: SnapshotterKind;
  importMs: number;
  prepare: number[];
  changes: number[];
  total: number[];
  cleanup: number[];
  oneFileChanges: Change[];
  bigStepChanges: number;
  bigStepChangesMs: number;
}

async function benchKind(kind: SnapshotterKind, rootfs: string, work: string): Promise<KindResult> {
  const s = await createSnapshotter({ root: join(work, kind), kind });
  if (s.kind !== kind) throw new Error(`asked for ${kind}, got ${s.kind}`);
  let t = performance.now();
  await s.createCommitted('base', undefined, async (dir) => {
    execFileSync('cp', ['-a', '--reflink=auto', `${rootfs}/.`, dir]);
  });
  const importMs = performance.now() - t;
  const r: KindResult = { kind, importMs, prepare: [], changes: [], total: [], cleanup: [], oneFileChanges: [], bigStepChanges: 0, bigStepChangesMs: 0 };
  for (let i = 0; i < (kind === 'copy' ? copyRuns : runs); i++) {
    const key = `run-${i}`;
    t = performance.now();
    const fs = await s.prepare(key, 'base');
    const prepared = performance.now();
    await writeFile(join(fs.path, 'etc/hostname'), `step ${i}\n`);
    const t2 = performance.now();
    const { changes } = await s.changes(key);
    const t3 = performance.now();
    await fs.release();
    await s.remove(key);
    const t4 = performance.now();
    r.prepare.push(prepared - t);
    r.changes.push(t3 - t2);
    r.total.push(prepared - t + (t3 - t2));
    r.cleanup.push(t4 - t3);
    r.oneFileChanges = changes;
  }
  // A bigger step: 1000 new files in a new dir and 100 rewritten ones.
  const fs = await s.prepare('big', 'base');
  await mkdir(join(fs.path, 'opt/big'), { recursive: true });
  for (let i = 0; i < 1000; i++) await writeFile(join(fs.path, 'opt/big', `f${i}`), `file ${i}`);
  const existing = execFileSync('find', [join(fs.path, 'usr/share'), '-type', 'f', '-size', '-64k'], { maxBuffer: 64 << 20 })
    .toString()
    .split('\n')
    .filter(Boolean)
    .slice(0, 100);
  for (const p of existing) await writeFile(p, 'rewritten');
  t = performance.now();
  const big = await s.changes('big');
  r.bigStepChangesMs = performance.now() - t;
  r.bigStepChanges = big.changes.length;
  await fs.release();
  await s.remove('big');
  return r;
}

async function main(): Promise<void> {
  let rootfs: string;
  let source: string;
  if (args.includes('--synthetic')) {
    rootfs = await syntheticRootfs();
    source = 'synthetic tree';
  } else {
    try {
      rootfs = await debianRootfs();
      source = 'Debian bookworm minbase (mmdebstrap)';
    } catch (err) {
      console.error(`mmdebstrap failed (${(err as Error).message.split('\n')[0]}); using a synthetic tree`);
      rootfs = await syntheticRootfs();
      source = 'synthetic tree';
    }
  }
  const size = du(rootfs);
  const work = await mkdtemp(join(tmpdir(), 'kiln-bench-snapshot-'));
  try {
    const walkStart = performance.now();
    await buildIndex(rootfs);
    const fullWalkMs = performance.now() - walkStart;
    const results: KindResult[] = [];
    for (const kind of kinds) results.push(await benchKind(kind, rootfs, work));
    const none: KindResult = { kind: 'copy', importMs: NaN, prepare: [NaN], changes: [NaN], total: [NaN], cleanup: [NaN], oneFileChanges: [], bigStepChanges: 0, bigStepChangesMs: NaN };
    const ov = results.find((r) => r.kind === 'overlay') ?? { ...none, kind: 'overlay' as const };
    const cp = results.find((r) => r.kind === 'copy') ?? none;
    const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    console.log(`\nSnapshotter benchmark — ${source}: ${size.mb} MB, ${size.entries} entries; ${runs} overlay / ${copyRuns} copy runs; ${cpus().length} cores, load ${load}, Linux ${release()}`);
    console.log(`one changed file (etc/hostname) on top of the rootfs; median (min–max)\n`);
    const rows: [string, string, string][] = [
      ['prepare', fmt(ov.prepare), fmt(cp.prepare)],
      ['changes()', fmt(ov.changes), fmt(cp.changes)],
      ['prepare + changes()', fmt(ov.total), fmt(cp.total)],
      ['release + remove', fmt(ov.cleanup), fmt(cp.cleanup)],
      ['changes() of a 1100-file step', `${ov.bigStepChangesMs.toFixed(1)} ms (${ov.bigStepChanges} changes)`, `${cp.bigStepChangesMs.toFixed(1)} ms (${cp.bigStepChanges} changes)`],
      ['import rootfs (createCommitted, cp -a)', `${ov.importMs.toFixed(0)} ms`, `${cp.importMs.toFixed(0)} ms`],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length), 6);
    const w1 = Math.max(...rows.map((r) => r[1].length), 7);
    console.log(`${'metric'.padEnd(w0)}  ${'overlay'.padEnd(w1)}  copy`);
    for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
    console.log(`\nreference: one lstat walk of the whole rootfs (what a full-filesystem differ pays per step): ${fullWalkMs.toFixed(1)} ms`);
    console.log(`one-file changes: overlay ${JSON.stringify(ov.oneFileChanges)}; copy ${JSON.stringify(cp.oneFileChanges)}`);
    const ok = !kinds.includes('overlay') || median(ov.total) < LIMIT_MS;
    console.log(`\noverlay prepare + changes() median ${median(ov.total).toFixed(1)} ms: ${ok ? 'PASS' : 'FAIL'} (< ${LIMIT_MS} ms)`);
    const out = flag('--out');
    if (out) await writeFile(out, JSON.stringify({ source, size, runs, fullWalkMs: fullWalkMs, results }, null, 2));
    if (!ok) process.exitCode = 1;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
