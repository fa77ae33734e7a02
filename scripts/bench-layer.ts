/**
 * Layer commit benchmark: a ~1 GiB directory (half text, half random bytes)
 * committed as a layer by kiln (gzip on every core, zstd) against
 * `tar -c | pigz | sha256sum` and `tar -c | gzip | sha256sum` at the same level.
 * Each kiln run is a child process so its peak RSS is its own.
 *
 *   npx tsx scripts/bench-layer.ts [--size-mib 1024] [--level 6] [--repeat 2] [--keep]
 *   npx tsx scripts/bench-layer.ts --debian     # round trip of the Debian fixture rootfs instead
 *
 * --debian: apply every layer of the cached mmdebstrap Debian fixture with kiln,
 * diff the tree back into a layer, and compare (1) `tar -tvv` of the original
 * layer 1 with ours and (2) kiln's extracted tree with umoci's unpack of the
 * same image (type, mode, owner, size, content, link target, xattrs per path).
 *
 * Data lives in a temp dir under /tmp and is removed at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name: string, def: string): string => {
  const i = args.indexOf(name);
  return i === -1 ? def : args[i + 1]!;
};

// The measured commit, run in a child process: compiled dist/ when built (what the CLI ships), else through tsx.
const CHILD = `
const [dir, compression, level, storeDir, base] = process.argv.slice(1);
const { openContentStore } = await import(base + '/content/index.js');
const { writeLayer, changesFromTree } = await import(base + '/layer/index.js');
const store = openContentStore(storeDir);
const c0 = process.cpuUsage();
const t0 = performance.now();
const changes = await changesFromTree(dir);
const r = await writeLayer(store, { root: dir, changes, compression, level: Number(level), sourceDateEpoch: 0 });
const ms = performance.now() - t0;
const cpu = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, size: r.descriptor.size, maxRssKiB: process.resourceUsage().maxRSS }));
`;

/** Real source text (JavaScript, TypeScript, JSON, Markdown from node_modules), cycled to `bytes`. */
function textCorpus(): Buffer {
  const out: Buffer[] = [];
  let n = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && /\.(js|ts|json|md|mjs|cjs)$/.test(e.name) && n < 256 << 20) {
        const b = readFileSync(p);
        out.push(b);
        n += b.length;
      }
    }
  };
  walk(join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules'));
  return Buffer.concat(out);
}

function makeText(corpus: Buffer, bytes: number, seed: number): Buffer {
  const start = (seed * 7_919_993) % Math.max(1, corpus.length - 1);
  const out = Buffer.allocUnsafe(bytes);
  let pos = 0;
  let src = start;
  while (pos < bytes) {
    const n = Math.min(bytes - pos, corpus.length - src);
    corpus.copy(out, pos, src, src + n);
    pos += n;
    src = 0;
  }
  return out;
}

/** Wall and CPU time (all processes of the pipeline, from bash's `times`). */
function timeShell(cmd: string): { ms: number; cpuMs: number; out: string } {
  const t0 = performance.now();
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', `${cmd}; times`], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const children = lines.pop()!;
  lines.pop();
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((acc, m) => acc + Number(m[1]) * 60 + Number(m[2]), 0);
  return { ms, cpuMs: secs * 1000, out: lines.join('\n').trim() };
}

/** Per path: type, mode, owner, size, content hash, link target, device, xattrs (one getfattr run). */
function describeTree(root: string): Map<string, string> {
  const xattrs = new Map<string, string[]>();
  const dump = spawnSync('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { encoding: 'utf8', maxBuffer: 256 << 20 }).stdout;
  let cur = '';
  for (const l of dump.split('\n')) {
    if (l.startsWith('# file: ')) cur = l.slice(8);
    else if (l) xattrs.set(cur, [...(xattrs.get(cur) ?? []), l]);
  }
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = lstatSync(p);
      let what = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isFIFO() ? 'fifo' : st.isCharacterDevice() || st.isBlockDevice() ? `dev ${st.rdev}` : '';
      if (st.isFile()) what = `file ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`;
      const mode = st.isSymbolicLink() ? '' : (st.mode & 0o7777).toString(8);
      out.set(r, `${what} ${mode} ${st.uid}:${st.gid} ${(xattrs.get(p) ?? []).sort().join(',')}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

async function debianRoundTrip(base: string): Promise<void> {
  const { ensureDebianLayout } = await import('./fixtures/debian.js');
  const { applyLayer } = await import('../src/layer/apply.js');
  const { writeLayer } = await import('../src/layer/write-layer.js');
  const { changesFromTree } = await import('../src/layer/walk-tree.js');
  const { openContentStore } = await import('../src/content/index.js');
  const layout = await ensureDebianLayout({ log: (l) => console.log(l) });
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blob = (d: string): string => join(layout, 'blobs', 'sha256', d.slice('sha256:'.length));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const rootfs = join(base, 'kiln-rootfs');
  mkdirSync(rootfs);
  let t0 = performance.now();
  let entries = 0;
  for (const l of manifest.layers) entries += (await applyLayer(createReadStream(blob(l.digest)), rootfs, { mediaType: l.mediaType })).entries;
  const applyMs = performance.now() - t0;
  const store = openContentStore(join(base, 'store-debian'));
  t0 = performance.now();
  const ours = await writeLayer(store, { root: rootfs, changes: await changesFromTree(rootfs), compression: 'gzip' });
  const writeMs = performance.now() - t0;
  const norm = (file: string): string[] =>
    spawnSync('tar', ['-tvvzf', file, '--numeric-owner', '--xattrs', '--xattrs-include=*'], { encoding: 'utf8', maxBuffer: 256 << 20 })
      .stdout.trim()
      .split('\n')
      .map((l) => l.replace(/^(d\S+\s+\S+\s+)\d+/, '$1D').replace(/(\d\d:\d\d )\.\//, '$1').replace(/ link to \.\//, ' link to '))
      .filter((l) => !/\d\d:\d\d $/.test(l) && !/ dev\/$/.test(l))
      .sort();
  const a = norm(blob(manifest.layers[0].digest));
  const b = norm(store.blobPath(ours.descriptor.digest)).filter((l) => !/ dev\/$/.test(l));
  const onlyA = a.filter((x) => !b.includes(x));
  const onlyB = b.filter((x) => !a.includes(x));
  const tarDiff = onlyA.length + onlyB.length;
  const bundle = join(base, 'umoci-bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:latest`, bundle], { stdio: 'ignore', timeout: 600_000 });
  const k = describeTree(rootfs);
  const u = describeTree(join(bundle, 'rootfs'));
  const differ = [...new Set([...k.keys(), ...u.keys()])].filter((p) => k.get(p) !== u.get(p));
  console.log(`Debian rootfs round trip: ${entries} entries; apply ${(applyMs / 1000).toFixed(2)} s, diff+gzip ${(writeMs / 1000).toFixed(2)} s (${(ours.uncompressedSize / 1e6).toFixed(0)} MB tar)`);
  console.log(`  tar -tvv: original layer vs kiln's re-diff: ${a.length} lines, ${tarDiff} differ${tarDiff ? ': ' + JSON.stringify([...onlyA.slice(0, 3), ...onlyB.slice(0, 3)]) : ''}`);
  console.log(`  kiln apply vs umoci unpack: ${k.size} paths, ${differ.length} differ${differ.length ? ': ' + differ.slice(0, 5).map((p) => `${p} [${k.get(p)}] vs [${u.get(p)}]`).join('; ') : ''}`);
  if (tarDiff > 0 || differ.length > 0) process.exitCode = 1;
}

async function main(): Promise<void> {
  if (args.includes('--debian')) {
    const base = mkdtempSync(join(tmpdir(), 'kiln-bench-debian-'));
    try {
      return await debianRoundTrip(base);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }
  const sizeMiB = Number(flag('--size-mib', '1024'));
  const level = Number(flag('--level', '6'));
  const base = mkdtempSync(join(tmpdir(), 'kiln-bench-layer-'));
  const data = join(base, 'data');
  const fileMiB = 4;
  try {
    mkdirSync(join(data, 'text'), { recursive: true });
    mkdirSync(join(data, 'random'), { recursive: true });
    const files = Math.max(1, Math.floor(sizeMiB / fileMiB / 2));
    const corpus = textCorpus();
    for (let i = 0; i < files; i++) {
      writeFileSync(join(data, 'text', `t${i}.txt`), makeText(corpus, fileMiB << 20, i + 1));
      writeFileSync(join(data, 'random', `r${i}.bin`), randomBytes(fileMiB << 20));
    }
    const total = files * 2 * fileMiB;
    // Warm the page cache equally for everyone.
    timeShell(`tar -C ${data} -cf - . | cat > /dev/null`);
    const here = dirname(fileURLToPath(import.meta.url));
    const dist = join(here, '..', 'dist', 'src');
    const compiled = existsSync(join(dist, 'layer', 'write-layer.js'));
    const srcBase = compiled ? dist : join(here, '..', 'src');
    const childArgs = compiled ? ['--input-type=module', '-e', CHILD] : ['--import', 'tsx', '--input-type=module', '-e', CHILD];
    type Run = { ms: number; cpuMs: number; size?: number; maxRssKiB?: number };
    const kiln = (compression: string, lvl: number): Run => {
      const store = join(base, `store-${compression}`);
      const out = execFileSync(process.execPath, [...childArgs, data, compression, String(lvl), store, srcBase], { encoding: 'utf8', maxBuffer: 1 << 20 });
      rmSync(store, { recursive: true, force: true });
      return JSON.parse(out);
    };
    const shell = (cmd: string): Run => timeShell(cmd);
    const contenders: Array<[string, () => Run]> = [
      [`kiln gzip -${level} (→ store)`, () => kiln('gzip', level)],
      [`tar | pigz -${level} | sha256sum`, () => shell(`tar -C ${data} -cf - . | pigz -${level} | sha256sum`)],
      [`tar | gzip -${level} | sha256sum`, () => shell(`tar -C ${data} -cf - . | gzip -${level} | sha256sum`)],
      ['kiln zstd -3 (→ store)', () => kiln('zstd', 3)],
      ['tar | zstd -3 -T0 | sha256sum', () => shell(`tar -C ${data} -cf - . | zstd -3 -T0 -q -c | sha256sum`)],
      ['kiln uncompressed (→ store)', () => kiln('none', 0)],
    ];
    const repeat = Number(flag('--repeat', '2'));
    const best = new Map<string, Run>();
    for (let i = 0; i < repeat; i++) {
      for (const [name, run] of contenders) {
        if (i > 0 && name.includes('| gzip')) continue; // slowest, once is enough
        const r = run();
        const prev = best.get(name);
        if (!prev || r.ms < prev.ms) best.set(name, { ...prev, ...r, cpuMs: Math.min(r.cpuMs, prev?.cpuMs ?? Infinity) });
      }
    }
    const pigzSize = Number(timeShell(`tar -C ${data} -cf - . | pigz -${level} | wc -c`).out);
    best.get(`tar | pigz -${level} | sha256sum`)!.size = pigzSize;
    const mbps = (ms: number): number => (total * 1.048576) / (ms / 1000);
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(`layer commit of ${total} MiB (${files} text + ${files} random files of ${fileMiB} MiB), ${availableParallelism()} cores, ${compiled ? 'compiled dist/' : 'tsx'}, best of ${repeat}, load average ${load}`);
    console.log('run'.padEnd(34), 'wall s'.padStart(7), 'MB/s'.padStart(6), 'CPU s'.padStart(7), 'ratio'.padStart(6), 'peak RSS'.padStart(9));
    for (const [name] of contenders) {
      const r = best.get(name)!;
      console.log(
        name.padEnd(34),
        (r.ms / 1000).toFixed(2).padStart(7),
        mbps(r.ms).toFixed(0).padStart(6),
        (r.cpuMs / 1000).toFixed(2).padStart(7),
        (r.size === undefined ? '' : (r.size / (total << 20)).toFixed(3)).padStart(6),
        (r.maxRssKiB === undefined ? '' : `${(r.maxRssKiB / 1024).toFixed(0)} MB`).padStart(9),
      );
    }
    const g = best.get(contenders[0]![0])!;
    const p = best.get(contenders[1]![0])!;
    const gz = best.get(contenders[2]![0])!;
    const z = best.get(contenders[3]![0])!;
    console.log(
      `kiln gzip vs pigz: ${(p.ms / g.ms).toFixed(2)}x wall, ${(p.cpuMs / g.cpuMs).toFixed(2)}x CPU;  vs gzip: ${(gz.ms / g.ms).toFixed(2)}x;  kiln zstd vs kiln gzip -${level}: ${(g.ms / z.ms).toFixed(2)}x`,
    );
  } finally {
    if (!args.includes('--keep')) rmSync(base, { recursive: true, force: true });
  }
}

await main();
