/**
 * Layer commit benchmark: a ~1 GiB directory (half text, half random bytes)
 * committed as a layer by kiln (gzip on every core, zstd) against
 * `tar -c | pigz | sha256sum` and `tar -c | gzip | sha256sum` at the same level.
 * Each kiln run is a child process so its peak RSS is its own.
 *
 *   npx tsx scripts/bench-layer.ts [--size-mib 1024] [--level 6] [--keep]
 *
 * Data lives in a temp dir under /tmp and is removed at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

async function main(): Promise<void> {
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
