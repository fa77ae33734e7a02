// Keeps the benchmark harness working: `bench --quick` (small data, one run, no dockerd) must
// print the table and write the JSON and markdown results, with real figures for the raw tools
// and skopeo, and a clear per-tool failure (not a crash) for anything that cannot run yet.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from '../helpers/repo.js';

function runBench(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, 'dist', 'scripts', 'bench.js'), ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('bench --quick prints the table and writes JSON + markdown results', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-bench-smoke-'));
  try {
    const out = join(dir, 'quick.json');
    const t0 = Date.now();
    const r = await runBench(["--quick", "--out", out], 150_000);
    const took = Date.now() - t0;
    assert.is(r.code, 0, `bench exited ${r.code}:\n${r.stderr.slice(-2000)}`);
    assert.ok(took < 120_000, `--quick took ${took} ms (budget: < 60 s on an idle machine)`);

    assert.match(r.stdout, /scenario\s+tool\s+median\s+min\s+max\s+n\s+kiln\/tool\s+peak RSS/);
    for (const id of ['many-files:cold', 'big-layer:cold', 'unused-stage:cold', 'push-pull:push', 'push-pull:pull', 'cache:export', 'cache:import']) {
      assert.ok(r.stdout.includes(id), `table lacks ${id}`);
    }

    const doc = JSON.parse(await readFile(out, 'utf8'));
    assert.is(doc.options.quick, true);
    assert.is(doc.options.runs, 1);
    const byId = new Map<string, any>(doc.scenarios.map((s: any) => [s.id, s]));
    const tool = (id: string, name: string) => {
      const s = byId.get(id);
      assert.ok(s, `no results for ${id}`);
      const t = s.tools.find((x: any) => x.tool === name);
      assert.ok(t, `no ${name} in ${id}`);
      return t;
    };
    // The physical limits always run: real, positive timings.
    for (const [id, name] of [
      ['many-files:cold', 'tar|gzip|sha256sum'],
      ['many-files:cold', 'sha256sum'],
      ['big-layer:cold', 'write+tar|gzip|sha256sum'],
      ['push-pull:push', 'skopeo'],
      ['push-pull:pull', 'skopeo'],
    ] as const) {
      const t = tool(id, name);
      assert.is(t.error, undefined, `${name} in ${id} failed: ${t.error}`);
      assert.ok(t.median > 0 && t.min <= t.median && t.median <= t.max, `${name} in ${id}: bad stats`);
    }
    // buildah is a peer of every build scenario (it needs root for vfs + chroot here).
    if (process.getuid?.() === 0) {
      for (const id of ['many-files:cold', 'big-layer:cold', 'unused-stage:cold']) {
        const t = tool(id, 'buildah');
        assert.is(t.error, undefined, `buildah in ${id} failed: ${t.error}`);
        assert.ok(t.median > 0);
      }
    }
    // kiln runs every scenario of --quick (a failure is a red smoke test, not a row to shrug at),
    // with a ratio against each peer that ran.
    for (const s of doc.scenarios) {
      const k = s.tools.find((x: any) => x.kind === 'kiln');
      assert.ok(k, `${s.id} has no kiln column`);
      assert.is(k.error, undefined, `${s.id}: kiln failed: ${k.error}`);
      assert.ok(k.median > 0 && k.peakRssKb > 0, `${s.id}: kiln figures missing`);
      for (const [peer, ratio] of Object.entries<any>(s.ratios)) {
        const p = s.tools.find((x: any) => x.tool === peer);
        if (!p.error && !p.unavailable) assert.ok(ratio.median > 0, `${s.id}: no kiln/${peer} ratio`);
      }
    }
    // The cache rows compare export and import with kiln's own cold build of the same context.
    for (const id of ['cache:export', 'cache:import']) {
      const cold = tool(id, 'kiln cold (no cache)');
      assert.is(cold.error, undefined, `kiln cold in ${id} failed: ${cold.error}`);
      assert.ok(byId.get(id).ratios['kiln cold (no cache)'].median > 0, `${id}: no ratio against the cold build`);
    }
    const md = await readFile(join(dir, 'quick.md'), 'utf8');
    assert.match(md, /\| scenario \| tool \| median \|/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bench refuses an unknown scenario and an unknown option', async () => {
  const a = await runBench(['--only', 'no-such-scenario'], 20_000);
  assert.is(a.code, 2);
  assert.match(a.stderr, /Unknown scenario "no-such-scenario"/);
  const b = await runBench(['--frobnicate'], 20_000);
  assert.is(b.code, 2);
  assert.match(b.stderr, /Unknown option "--frobnicate"/);
});

test.run();
