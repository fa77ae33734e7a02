/**
 * `npm run bench` — kiln against its peers (buildah, BuildKit via dockerd) and the raw tools,
 * side by side in one run. See BENCHMARKS.md.
 *
 *   node dist/scripts/bench.js [--quick] [--runs N] [--only NAME[:MODE],…] [--list]
 *        [--no-dockerd] [--no-install] [--kiln-flag FLAG]… [--timeout SECONDS] [--out FILE]
 *        [--keep-node-ca-certs]
 *
 * For every scenario run (scenario × mode) each tool is timed N times, interleaved
 * (kiln run i, then each peer's run i) so that the ratio kiln/peer is taken pair by pair
 * within the same run and a noisy neighbour hurts both sides alike; the table shows the
 * median of those ratios. A tool that fails is reported (with its error) and stops being run
 * for that scenario; it never stops the benchmark. Results: bench/results/<date>.json and .md.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { installDockerIo, startDockerd, type Dockerd } from '../test/helpers/dockerd.js';
import { kilnBin, repoRoot } from '../test/helpers/repo.js';
import { startRegistry } from '../test/helpers/registry.js';
import { killActive, measure, type Measured } from './bench/measure.js';
import { scenarios } from './bench/scenarios.js';
import { fmtMb, fmtRatio, fmtSeconds, median, renderMarkdown, renderTable, summary } from './bench/stats.js';
import type { BenchEnv, ScenarioRun, Tool } from './bench/types.js';

interface Options {
  quick: boolean;
  runs?: number;
  only?: string[];
  list: boolean;
  dockerd: boolean;
  install: boolean;
  kilnFlags: string[];
  keepNodeCaCerts: boolean;
  timeoutS?: number;
  out?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, list: false, dockerd: true, install: true, kilnFlags: [], keepNodeCaCerts: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`Option "${a}" needs a value`);
      return v;
    };
    const flag = a.split('=')[0];
    if (flag === '--quick') o.quick = true;
    else if (flag === '--runs') o.runs = Number(val());
    else if (flag === '--only') o.only = val().split(',').filter(Boolean);
    else if (flag === '--list') o.list = true;
    else if (flag === '--no-dockerd') o.dockerd = false;
    else if (flag === '--no-install') o.install = false;
    else if (flag === '--kiln-flag') o.kilnFlags.push(val());
    else if (flag === '--keep-node-ca-certs') o.keepNodeCaCerts = true;
    else if (flag === '--timeout') o.timeoutS = Number(val());
    else if (flag === '--out') o.out = val();
    else if (flag === '-h' || flag === '--help') {
      console.log(
        'usage: npm run bench -- [--quick] [--runs N] [--only NAME[:MODE],…] [--list] [--no-dockerd] [--no-install]\n' +
          '                       [--kiln-flag FLAG]… [--timeout SECONDS] [--out FILE.json] [--keep-node-ca-certs]',
      );
      process.exit(0);
    } else throw new Error(`Unknown option "${a}" (try --help)`);
  }
  if (o.runs !== undefined && !(Number.isInteger(o.runs) && o.runs >= 1)) throw new Error(`--runs must be a positive integer, got "${o.runs}"`);
  if (o.timeoutS !== undefined && !(o.timeoutS > 0)) throw new Error(`--timeout must be a positive number of seconds`);
  return o;
}

interface ToolResult {
  tool: string;
  kind: Tool['kind'];
  unavailable?: string;
  runs: Measured[];
  error?: string;
  median?: number;
  min?: number;
  max?: number;
  peakRssKb?: number;
}

interface RunResult {
  id: string;
  description: string;
  tools: ToolResult[];
  /** kiln/tool time ratios, pair by pair (run i with run i), and their median. */
  ratios: Record<string, { pairs: number[]; median?: number }>;
  /** Set when the scenario could not be prepared at all. */
  error?: string;
}

function version(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0];
  } catch {
    return undefined;
  }
}

async function runScenario(run: ScenarioRun, runs: number, log: (m: string) => void): Promise<RunResult> {
  const results: ToolResult[] = run.tools.map((t) => ({ tool: t.name, kind: t.kind, runs: [], ...(t.unavailable ? { unavailable: t.unavailable } : {}) }));
  for (let i = 0; i < runs; i++) {
    for (const [k, tool] of run.tools.entries()) {
      const r = results[k]!;
      if (tool.unavailable || r.error) continue;
      try {
        await tool.before?.(i);
      } catch (err) {
        r.error = `setup: ${(err as Error).message}`;
        log(`  ${tool.name}: ${firstLine(r.error)}`);
        continue;
      }
      const m = await measure(tool.command(i));
      if (m.ok && tool.verify) {
        try {
          await tool.verify(i);
        } catch (err) {
          m.ok = false;
          m.error = `verify: ${(err as Error).message}`;
        }
      }
      r.runs.push(m);
      if (!m.ok) {
        r.error = m.error;
        log(`  ${tool.name}: FAILED ${firstLine(m.error ?? '')}`);
      } else log(`  ${tool.name} #${i + 1}: ${fmtSeconds(m.ms)}${m.rssKb ? `, peak RSS ${fmtMb(m.rssKb)}` : ''}`);
    }
  }
  for (const r of results) {
    const ok = r.runs.filter((m) => m.ok);
    if (ok.length && !r.error) {
      Object.assign(r, summary(ok.map((m) => m.ms)));
      const rss = ok.map((m) => m.rssKb).filter((x): x is number => x !== undefined);
      if (rss.length) r.peakRssKb = Math.max(...rss);
    }
  }
  const ratios: RunResult['ratios'] = {};
  const kiln = results.find((r) => r.kind === 'kiln');
  for (const r of results) {
    if (r === kiln || !kiln) continue;
    const pairs: number[] = [];
    if (!kiln.error && !r.error) {
      for (let i = 0; i < Math.min(kiln.runs.length, r.runs.length); i++) pairs.push(kiln.runs[i]!.ms / r.runs[i]!.ms);
    }
    ratios[r.tool] = { pairs, ...(pairs.length ? { median: median(pairs) } : {}) };
  }
  return { id: run.id, description: run.description, tools: results, ratios };
}

/** The first two non-empty lines of an error, on one line (for logs, notes and the table). */
function firstLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.slice(0, 2).join(' / ').slice(0, 240);
}

function tableRows(results: RunResult[]): string[][] {
  const rows = [['scenario', 'tool', 'median', 'min', 'max', 'n', 'kiln/tool', 'peak RSS']];
  for (const res of results) {
    if (res.error) {
      rows.push([res.id, '—', `SETUP FAILED: ${firstLine(res.error).slice(0, 60)}`, '', '', '', '', '']);
      continue;
    }
    res.tools.forEach((t, i) => {
      const label = i === 0 ? res.id : '';
      if (t.unavailable) rows.push([label, t.tool, 'n/a', '', '', '0', '', '']);
      else if (t.error) rows.push([label, t.tool, 'FAILED', '', '', String(t.runs.filter((m) => m.ok).length), '', '']);
      else
        rows.push([
          label,
          t.tool,
          fmtSeconds(t.median),
          fmtSeconds(t.min),
          fmtSeconds(t.max),
          String(t.runs.length),
          t.kind === 'kiln' ? '' : fmtRatio(res.ratios[t.tool]?.median),
          fmtMb(t.peakRssKb),
        ]);
    });
  }
  return rows;
}

function notes(results: RunResult[]): string[] {
  const out: string[] = [];
  for (const res of results) {
    if (res.error) out.push(`${res.id}: setup failed: ${res.error}`);
    for (const t of res.tools) {
      if (t.unavailable) out.push(`${res.id} ${t.tool}: not run: ${firstLine(t.unavailable)}`);
      else if (t.error) out.push(`${res.id} ${t.tool}: FAILED: ${firstLine(t.error)}`);
    }
  }
  return out;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const wanted = (id: string, name: string) =>
    !opts.only || opts.only.some((o) => o === name || o === id || (o.endsWith(':*') && o.slice(0, -2) === name));
  const selected = scenarios.filter((s) => (opts.only ? opts.only.some((o) => o.split(':')[0] === s.name) : !opts.quick || s.quick));
  if (opts.list) {
    for (const s of scenarios) console.log(`${s.name.padEnd(18)} ${s.quick ? '[quick] ' : '        '}${s.description}`);
    return 0;
  }
  if (opts.only) {
    const unknown = opts.only.filter((o) => !scenarios.some((s) => s.name === o.split(':')[0]));
    if (unknown.length) throw new Error(`Unknown scenario "${unknown[0]}" (known: ${scenarios.map((s) => s.name).join(', ')})`);
  }
  const started = new Date();
  const log = (m: string) => console.error(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)}s] ${m}`);
  const work = await mkdtemp(join(tmpdir(), 'kiln-bench-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  let cleaning = false;
  const cleanup = async () => {
    if (cleaning) return;
    cleaning = true;
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      log(`${sig}: stopping the running command and cleaning up`);
      killActive();
      void cleanup().then(() => process.exit(130));
    });
  }

  try {
    const registry = await startRegistry();
    cleanups.push(() => registry.stop());
    const registriesConf = join(work, 'registries.conf');
    await writeFile(registriesConf, `[[registry]]\nlocation = "${registry.host}"\ninsecure = true\n`);
    log(`local registry on ${registry.host}; scratch in ${work}`);

    let dockerd: Dockerd | undefined;
    let dockerdReason: string | undefined;
    if (opts.quick || !opts.dockerd) dockerdReason = opts.quick ? 'not used in --quick' : 'disabled with --no-dockerd';
    else {
      if (opts.install) {
        const why = await installDockerIo();
        if (why) log(why);
      }
      const d = await startDockerd();
      if (d.ok) {
        dockerd = d;
        cleanups.push(() => d.stop());
        log(`dockerd (BuildKit peer) on ${d.host}`);
      } else {
        dockerdReason = d.reason;
        log(`BuildKit peer unavailable: ${firstLine(d.reason)}`);
      }
    }

    const env: BenchEnv = {
      quick: opts.quick,
      runs: opts.runs ?? (opts.quick ? 1 : 3),
      registry: registry.host,
      registriesConf,
      warmPaths: [registry.storageDir, join(work, 'ctx'), join(repoRoot, 'dist'), join(repoRoot, 'node_modules'), join(repoRoot, 'runtime')],
      work,
      repoRoot,
      kilnBin,
      kilnBuildFlags: opts.kilnFlags,
      keepNodeCaCerts: opts.keepNodeCaCerts,
      dockerd,
      dockerdReason,
      timeoutMs: (opts.timeoutS ?? (opts.quick ? 60 : 1800)) * 1000,
      log,
      cleanups,
    };

    const results: RunResult[] = [];
    for (const s of selected) {
      log(`scenario ${s.name}: ${s.description}`);
      let runs: ScenarioRun[];
      try {
        runs = await s.setup(env);
      } catch (err) {
        const msg = (err as Error).message;
        log(`  setup failed: ${firstLine(msg)}`);
        results.push({ id: s.name, description: s.description, tools: [], ratios: {}, error: msg });
        continue;
      }
      for (const run of runs) {
        if (!wanted(run.id, s.name)) continue;
        log(`${run.id}: ${run.description} (${env.runs} run${env.runs > 1 ? 's' : ''})`);
        results.push(await runScenario(run, env.runs, log));
      }
    }

    const rows = tableRows(results);
    const table = renderTable(rows);
    const noteLines = notes(results);
    console.log('\n' + table);
    if (noteLines.length) console.log('\nnotes:\n' + noteLines.map((n) => `  - ${n}`).join('\n'));

    const stamp = started.toISOString().replace(/\..*$/, '').replace(/:/g, '-');
    const outFile = opts.out ?? join(repoRoot, 'bench', 'results', `${stamp}${opts.quick ? '-quick' : ''}.json`);
    await mkdir(join(outFile, '..'), { recursive: true });
    const doc = {
      date: started.toISOString(),
      durationS: Math.round((Date.now() - started.getTime()) / 1000),
      options: { quick: opts.quick, runs: env.runs, only: opts.only ?? null, kilnFlags: opts.kilnFlags, keepNodeCaCerts: opts.keepNodeCaCerts },
      host: { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version },
      versions: {
        buildah: version('buildah', ['--version']),
        skopeo: version('skopeo', ['--version']),
        dockerd: dockerd ? version('/usr/sbin/dockerd', ['--version']) : undefined,
        gzip: version('gzip', ['--version']),
        zstd: version('zstd', ['--version']),
        kilnCommit: version('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']),
      },
      dockerd: dockerd ? 'used' : dockerdReason,
      scenarios: results,
    };
    await writeFile(outFile, JSON.stringify(doc, null, 2) + '\n');
    await writeFile(
      outFile.replace(/\.json$/, '') + '.md',
      `Run ${doc.date} (${doc.durationS} s, ${env.runs} run(s) each, ${doc.host.cpus} cores, kiln ${doc.versions.kilnCommit})\n\n` +
        renderMarkdown(rows) +
        (noteLines.length ? '\n\n' + noteLines.map((n) => `- ${n}`).join('\n') : '') +
        '\n',
    );
    console.log(`\nresults: ${outFile}`);
    return 0;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
