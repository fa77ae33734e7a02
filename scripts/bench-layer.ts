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
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name: string, def: string): string => {
  const i = args.indexOf(name);
  return i === -1 ? def : args[i + 1]!;
};

async function child(): Promise<void> {
  const [, dir, compression, level, storeDir] = args;
  const { openContentStore } = await import('../src/content/index.js');
  const { writeLayer, changesFromTree } = await import('../src/layer/index.js');
  const store = openContentStore(storeDir!);
  const t0 = performance.now();
  const changes = await changesFromTree(dir!);
  const r = await writeLayer(store, { root: dir!, changes, compression: compression as 'gzip' | 'zstd' | 'none', level: Number(level), sourceDateEpoch: 0 });
  const ms = performance.now() - t0;
  process.stdout.write(JSON.stringify({ ms, size: r.descriptor.size, usize: r.uncompressedSize, digest: r.descriptor.digest, maxRssKiB: process.resourceUsage().maxRSS }));
}

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

function timeShell(cmd: string): { ms: number; out: string } {
  const t0 = performance.now();
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return { ms: performance.now() - t0, out: r.stdout.trim() };
}

async function main(): Promise<void> {
  if (args[0] === '--child') return child();
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
    const self = fileURLToPath(import.meta.url);
    const kiln = (compression: string, lvl: number): { ms: number; size: number; usize: number; maxRssKiB: number } => {
      const store = join(base, `store-${compression}`);
      const out = execFileSync(process.execPath, [...process.execArgv, self, '--child', data, compression, String(lvl), store], { encoding: 'utf8', maxBuffer: 1 << 20 });
      rmSync(store, { recursive: true, force: true });
      return JSON.parse(out);
    };
    const mbps = (ms: number): number => (total * 1.048576) / (ms / 1000);
    const rows: Array<[string, number, number | undefined, number | undefined]> = [];
    const g = kiln('gzip', level);
    rows.push([`kiln gzip -${level} (workers, → store)`, g.ms, g.size, g.maxRssKiB]);
    const pigz = timeShell(`tar -C ${data} -cf - . | pigz -${level} | sha256sum`);
    const pigzSize = Number(timeShell(`tar -C ${data} -cf - . | pigz -${level} | wc -c`).out);
    rows.push([`tar | pigz -${level} | sha256sum`, pigz.ms, pigzSize, undefined]);
    const gz = timeShell(`tar -C ${data} -cf - . | gzip -${level} | sha256sum`);
    rows.push([`tar | gzip -${level} | sha256sum`, gz.ms, undefined, undefined]);
    const z = kiln('zstd', 3);
    rows.push(['kiln zstd -3 (→ store)', z.ms, z.size, z.maxRssKiB]);
    const zc = timeShell(`tar -C ${data} -cf - . | zstd -3 -T0 -q -c | sha256sum`);
    rows.push(['tar | zstd -3 -T0 | sha256sum', zc.ms, undefined, undefined]);
    const n = kiln('none', 0);
    rows.push(['kiln uncompressed (→ store)', n.ms, n.size, n.maxRssKiB]);

    console.log(`layer commit of ${total} MiB (${files} text + ${files} random files of ${fileMiB} MiB), ${spawnSync('nproc').stdout.toString().trim()} cores`);
    console.log('run'.padEnd(40), 'seconds'.padStart(8), 'MB/s'.padStart(8), 'ratio'.padStart(7), 'peak RSS'.padStart(10));
    for (const [name, ms, size, rss] of rows) {
      console.log(
        name.padEnd(40),
        (ms / 1000).toFixed(2).padStart(8),
        mbps(ms).toFixed(0).padStart(8),
        (size === undefined ? '' : (size / (total << 20)).toFixed(3)).padStart(7),
        (rss === undefined ? '' : `${(rss / 1024).toFixed(0)} MB`).padStart(10),
      );
    }
    console.log(`kiln gzip vs pigz: ${(pigz.ms / g.ms).toFixed(2)}x   vs gzip: ${(gz.ms / g.ms).toFixed(2)}x   kiln zstd vs kiln gzip -${level}: ${(g.ms / z.ms).toFixed(2)}x`);
  } finally {
    if (!args.includes('--keep')) rmSync(base, { recursive: true, force: true });
  }
}

await main();
