/**
 * The named benchmark scenarios (issue 8). Each build scenario has its Dockerfile and static
 * context under bench/<name>/; generated inputs are written into a per-run copy of it.
 */
import { cp, mkdir, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUSYBOX_BIN, ensureBusyboxLayout } from '../fixtures/busybox.js';
import { ensureDebianLayout } from '../fixtures/debian.js';
import { pushLayout } from '../../test/helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../../test/helpers/registry.js';
import { allBuilders, buildahBud, hasBinary, kilnEnv, type BuildMode, type BuildSpec } from './builders.js';
import { ensureAssetsLayout, ensureBulkLayout, writeManyFiles } from './data.js';
import { measure, type CommandSpec } from './measure.js';
import type { BenchEnv, Scenario, ScenarioRun, Tool } from './types.js';

/** Copy bench/<name> to a scratch context dir for this run (ctx/<as>). */
async function contextCopy(env: BenchEnv, name: string, as = name): Promise<string> {
  const dir = join(env.work, 'ctx', as);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(env.work, 'ctx'), { recursive: true });
  await cp(join(env.repoRoot, 'bench', name), dir, { recursive: true });
  return dir;
}

function buildRuns(
  env: BenchEnv,
  name: string,
  ctx: string,
  modes: BuildMode[],
  description: string,
  args: Record<string, string> = {},
  edit?: (n: number) => Promise<void>,
  extraCold: Tool[] = [],
): ScenarioRun[] {
  return modes.map((mode) => {
    const spec: BuildSpec = {
      name,
      contextDir: ctx,
      dockerfile: 'Dockerfile',
      buildArgs: { REGISTRY: env.registry, ...args },
      mode,
      edit,
    };
    const what = mode === 'cold' ? 'cold build' : mode === 'warm' ? 'warm rebuild, nothing changed' : 'rebuild after a one-file change';
    return {
      id: `${name}:${mode}`,
      description: `${description} — ${what}`,
      tools: [...allBuilders(env, spec), ...(mode === 'cold' ? extraCold : [])],
    };
  });
}

function raw(name: string, script: string, env: BenchEnv, cwd?: string): Tool {
  return { name, kind: 'raw', command: (): CommandSpec => ({ argv: [script], shell: true, cwd, timeoutMs: env.timeoutMs }) };
}

async function pushBusyboxTo(env: BenchEnv): Promise<void> {
  await pushLayout(env.registry, await ensureBusyboxLayout(), 'busybox:latest');
}

/**
 * MiB of zeros that a stage's pipeline, busybox's `head` into busybox's `sha256sum` (the ones
 * the fixture image carries), moves in `seconds` of CPU time (both processes) on this machine.
 * CPU time, not wall time: the machine is shared. (The host's `head` was used until 12/2026:
 * it costs less than busybox's, so each stage was ~4 CPU-seconds, not 3.)
 */
function cpuMegabytesFor(seconds: number): number {
  const probe = 256;
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', 'sh', '-c', `${BUSYBOX_BIN} head -c ${probe}m /dev/zero | ${BUSYBOX_BIN} sha256sum >/dev/null`], { encoding: 'utf8' });
  const [user, sys] = (r.stderr.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  const cpu = (user ?? NaN) + (sys ?? NaN);
  if (r.status !== 0 || !(cpu > 0)) throw new Error(`calibrating sha256sum failed: ${r.stderr.trim()}`);
  return Math.max(16, Math.round((probe * seconds) / cpu));
}

const full = (env: BenchEnv, modes: BuildMode[]): BuildMode[] => (env.quick ? ['cold'] : modes);

export const scenarios: Scenario[] = [
  {
    name: 'seed',
    description: 'Go program built in a Debian golang-go stage, shipped in scratch',
    quick: false,
    async setup(env) {
      env.log('seed: preparing Debian golang-go base (mmdebstrap, cached)…');
      const layout = await ensureDebianLayout({ include: ['golang-go'], log: env.log });
      await pushLayout(env.registry, layout, 'debian-golang-go:latest');
      const ctx = await contextCopy(env, 'seed');
      const edit = async (n: number) => {
        const f = join(ctx, 'greeting.go');
        const text = (await readFile(f, 'utf8')).replace(/seed benchmark[^"]*"/, `seed benchmark, edit ${n}"`);
        await writeFile(f, text);
      };
      return buildRuns(env, 'seed', ctx, ['cold', 'warm', 'change'], this.description, {}, edit);
    },
  },
  {
    name: 'multi-project',
    description: 'two C projects from one shared build-essential stage, busybox final stage',
    quick: false,
    async setup(env) {
      env.log('multi-project: preparing Debian build-essential base (mmdebstrap, cached)…');
      const layout = await ensureDebianLayout({ include: ['build-essential'], log: env.log });
      await pushLayout(env.registry, layout, 'debian-build-essential:latest');
      await pushBusyboxTo(env);
      const ctx = await contextCopy(env, 'multi-project');
      const edit = (n: number) => appendFile(join(ctx, 'a', 'util.c'), `/* edit ${n} */\n`);
      return buildRuns(env, 'multi-project', ctx, ['cold', 'warm', 'change'], this.description, {}, edit);
    },
  },
  {
    name: 'many-files',
    description: 'COPY of 20,000 small files, then a RUN changing 5,000 and deleting 1,000',
    quick: true,
    async setup(env) {
      await pushBusyboxTo(env);
      const ctx = await contextCopy(env, 'many-files');
      const count = env.quick ? 2000 : 20000;
      await writeManyFiles(join(ctx, 'files'), count);
      const edit = (n: number) => appendFile(join(ctx, 'files', 'd10', `f${String(Math.floor(count / 2)).padStart(5, '0')}.txt`), `edit ${n}\n`);
      const rawTools = [
        raw('tar|gzip|sha256sum', 'tar -C files -cf - . | gzip -n | sha256sum', env, ctx),
        raw('sha256sum', 'find files -type f -print0 | xargs -0 sha256sum > /dev/null', env, ctx),
      ];
      const desc = env.quick ? this.description.replace('20,000', `${count}`).replace('5,000', `${count / 4}`).replace('1,000', `${count / 20}`) : this.description;
      return buildRuns(env, 'many-files', ctx, full(env, ['cold', 'warm', 'change']), desc, {}, edit, rawTools);
    },
  },
  {
    name: 'big-layer',
    description: 'a RUN writing 1 GiB, half text, half random',
    quick: true,
    async setup(env) {
      await pushBusyboxTo(env);
      const ctx = await contextCopy(env, 'big-layer');
      const mb = env.quick ? 8 : 512;
      const gen =
        `set -e; d=$(mktemp -d -p ${JSON.stringify(env.work)}); ` +
        `yes "kiln big-layer benchmark: a line of compressible text" | head -c ${mb}M > "$d/text"; ` +
        `head -c ${mb}M /dev/urandom > "$d/random"; `;
      const rawTools = [
        raw('write+tar|gzip|sha256sum', `${gen} tar -C "$d" -cf - . | gzip -n | sha256sum; rm -rf "$d"`, env),
        ...(hasBinary('zstd') ? [raw('write+tar|zstd|sha256sum', `${gen} tar -C "$d" -cf - . | zstd -q -c | sha256sum; rm -rf "$d"`, env)] : []),
      ];
      const desc = env.quick ? `a RUN writing ${2 * mb} MiB, half text, half random` : this.description;
      return buildRuns(env, 'big-layer', ctx, full(env, ['cold', 'warm']), desc, { MB: String(mb) }, undefined, rawTools);
    },
  },
  {
    name: 'copy-from-remote',
    description: 'COPY --from two registry images into a busybox stage',
    quick: false,
    async setup(env) {
      await pushBusyboxTo(env);
      await pushLayout(env.registry, await ensureAssetsLayout('assets-a', 200, 100), 'assets-a:latest');
      await pushLayout(env.registry, await ensureAssetsLayout('assets-b', 20, 1024), 'assets-b:latest');
      const ctx = await contextCopy(env, 'copy-from-remote');
      return buildRuns(env, 'copy-from-remote', ctx, ['cold', 'warm'], this.description);
    },
  },
  {
    name: 'parallel-stages',
    description: 'four independent stages of ~3 CPU-seconds of fixed work each (ideal on 2 cores: ~6 s)',
    quick: false,
    async setup(env) {
      await pushBusyboxTo(env);
      const ctx = await contextCopy(env, 'parallel-stages');
      const mb = cpuMegabytesFor(3);
      env.log(`parallel-stages: ${mb} MiB through busybox head | sha256sum ≈ 3 CPU-seconds here`);
      return buildRuns(env, 'parallel-stages', ctx, ['cold'], this.description, { CPU_MB: String(mb) });
    },
  },
  {
    name: 'unused-stage',
    description: 'an expensive stage the target does not need (must cost nothing)',
    quick: true,
    async setup(env) {
      await pushBusyboxTo(env);
      const ctx = await contextCopy(env, 'unused-stage');
      return buildRuns(env, 'unused-stage', ctx, ['cold'], this.description, { WASTE_SECONDS: env.quick ? '2' : '10' });
    },
  },
  {
    name: 'push-pull',
    description: 'push and pull of a ~200 MB image (4 incompressible layers)',
    quick: true,
    async setup(env) {
      const [layers, mb] = env.quick ? [2, 4] : [4, 50];
      const layout = await ensureBulkLayout(layers, mb);
      const src = await pushLayout(env.registry, layout, 'bulk:latest');
      const size = `${layers * mb} MiB`;
      return pushPullRuns(env, layout, src, size);
    },
  },
  {
    name: 'cache',
    description: 'registry build cache (mode=max) export from a warm store and import into empty storage, vs a cold build (multi-project)',
    quick: true,
    async setup(env) {
      await pushBusyboxTo(env);
      if (env.quick) {
        // No Debian fixture in --quick: bench/cache is one 1-second busybox stage.
        const ctx = await contextCopy(env, 'cache');
        return cacheRuns(env, ctx, 'registry build cache of bench/cache (a 1 s busybox stage, mode=max)');
      }
      env.log('cache: preparing Debian build-essential base (mmdebstrap, cached)…');
      const layout = await ensureDebianLayout({ include: ['build-essential'], log: env.log });
      await pushLayout(env.registry, layout, 'debian-build-essential:latest');
      const ctx = await contextCopy(env, 'multi-project', 'cache-multi-project');
      return cacheRuns(env, ctx, 'registry build cache of multi-project (mode=max)');
    },
  },
];

/** A registry started on demand and replaced by `renew()` (fresh storage = nothing to skip). */
function scratchRegistry(env: BenchEnv) {
  let reg: TestRegistry | undefined;
  const self = {
    get host() {
      return reg!.host;
    },
    async renew() {
      await reg?.stop();
      reg = await startRegistry();
    },
    async ensure() {
      if (!reg) reg = await startRegistry();
    },
  };
  env.cleanups.push(async () => reg?.stop());
  return self;
}

function kilnCli(env: BenchEnv, root: string, args: string[]): CommandSpec {
  return { argv: [process.execPath, env.kilnBin, ...args], env: kilnEnv(env, root), timeoutMs: env.timeoutMs };
}

async function must(spec: CommandSpec, what: string): Promise<void> {
  const r = await measure(spec);
  if (!r.ok) throw new Error(`${what} failed: ${r.error}`);
}

function pushPullRuns(env: BenchEnv, layout: string, src: string, size: string): ScenarioRun[] {
  const skopeo = (from: string, to: string): CommandSpec => ({
    argv: ['skopeo', '--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', from, to],
    timeoutMs: env.timeoutMs,
  });
  const rootOf = (tag: string) => join(env.work, 'kiln-root', `push-pull-${tag}`);
  const fresh = async (dir: string) => {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
  };

  // push: from local storage to an empty registry
  const kPushReg = scratchRegistry(env);
  const sPushReg = scratchRegistry(env);
  const kPush: Tool = {
    name: 'kiln',
    kind: 'kiln',
    async before() {
      await kPushReg.renew();
      await fresh(rootOf('push'));
      await must(kilnCli(env, rootOf('push'), ['pull', src]), `kiln pull ${src} (untimed setup)`);
    },
    command: () => kilnCli(env, rootOf('push'), ['push', src, `${kPushReg.host}/bulk:latest`]),
  };
  const sPush: Tool = {
    name: 'skopeo',
    kind: 'raw',
    before: () => sPushReg.renew(),
    command: () => skopeo(`oci:${layout}:latest`, `docker://${sPushReg.host}/bulk:latest`),
  };

  // pull: from the registry into empty local storage
  const pullDir = join(env.work, 'skopeo-pull');
  const kPull: Tool = {
    name: 'kiln',
    kind: 'kiln',
    before: () => fresh(rootOf('pull')),
    command: () => kilnCli(env, rootOf('pull'), ['pull', src]),
  };
  const sPull: Tool = {
    name: 'skopeo',
    kind: 'raw',
    before: () => fresh(pullDir),
    command: () => skopeo(`docker://${src}`, `oci:${pullDir}:latest`),
  };

  // re-push of an unchanged image: everything is already there
  const kRe = scratchRegistry(env);
  const sRe = scratchRegistry(env);
  let kPrimed = false;
  let sPrimed = false;
  const kRepush: Tool = {
    name: 'kiln',
    kind: 'kiln',
    async before() {
      if (kPrimed) return;
      await kRe.ensure();
      await fresh(rootOf('repush'));
      await must(kilnCli(env, rootOf('repush'), ['pull', src]), `kiln pull ${src} (untimed setup)`);
      await must(kilnCli(env, rootOf('repush'), ['push', src, `${kRe.host}/bulk:latest`]), 'kiln push (priming)');
      kPrimed = true;
    },
    command: () => kilnCli(env, rootOf('repush'), ['push', src, `${kRe.host}/bulk:latest`]),
  };
  const sRepush: Tool = {
    name: 'skopeo',
    kind: 'raw',
    async before() {
      if (sPrimed) return;
      await sRe.ensure();
      await must(skopeo(`oci:${layout}:latest`, `docker://${sRe.host}/bulk:latest`), 'skopeo copy (priming)');
      sPrimed = true;
    },
    command: () => skopeo(`oci:${layout}:latest`, `docker://${sRe.host}/bulk:latest`),
  };
  return [
    { id: 'push-pull:push', description: `push ${size} from local storage to an empty registry`, tools: [kPush, sPush] },
    { id: 'push-pull:pull', description: `pull ${size} into empty local storage`, tools: [kPull, sPull] },
    { id: 'push-pull:repush', description: `re-push of the unchanged ${size} image`, tools: [kRepush, sRepush] },
  ];
}

/**
 * Run `spec` with its stdout and stderr in `file` (for a verify step that reads what the tool
 * said). On failure the last lines go to stderr, so the error in the table still says why.
 */
function logged(spec: CommandSpec, file: string): CommandSpec {
  const script = 'f=$0; "$@" >"$f" 2>&1 && exit 0; rc=$?; tail -n 20 "$f" >&2; exit $rc';
  return { ...spec, argv: ['sh', '-c', script, file, ...spec.argv], shell: false };
}

/** What a `kiln build --progress rawjson` log says about its cache. */
interface KilnLog {
  manifest: string;
  steps: number;
  cached: number;
  /** "cache import: N steps reused" (0 when nothing came from an imported cache). */
  reused: number;
  exported?: { records: number; uploaded: number; existed: number; mounted: number };
  /** Names of the steps that ran (not from any cache), "[internal]" base-image steps excluded. */
  ran: string[];
}

async function readKilnLog(file: string): Promise<KilnLog> {
  const text = await readFile(file, 'utf8');
  const names = new Map<string, string>();
  const ran: string[] = [];
  let reused = 0;
  let exported: KilnLog['exported'];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let e: { type?: string; id?: string; name?: string; cached?: boolean; error?: string; message?: string };
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (e.type === 'step-start') names.set(e.id!, e.name ?? e.id!);
    else if (e.type === 'step-done' && !e.cached && !e.error) {
      const name = names.get(e.id!) ?? e.id!;
      if (!name.startsWith('[internal]')) ran.push(name);
    } else if (e.type === 'info' && e.message) {
      const imp = /^cache import: (\d+) steps reused/.exec(e.message);
      if (imp) reused = Number(imp[1]);
      const exp = /^exported cache to .*: (\d+) records, .*?(\d+) blobs uploaded, (\d+) already there, (\d+) mounted/.exec(e.message);
      if (exp) exported = { records: Number(exp[1]), uploaded: Number(exp[2]), existed: Number(exp[3]), mounted: Number(exp[4]) };
    }
  }
  const m = /writing image \S+ \(manifest (sha256:[0-9a-f]{64})\), (\d+)\/(\d+) steps cached/.exec(text);
  if (!m) throw new Error(`no "writing image …, N/M steps cached" line in ${file}`);
  return { manifest: m[1]!, cached: Number(m[2]), steps: Number(m[3]), reused, ...(exported ? { exported } : {}), ran };
}

/**
 * What a `buildah bud --layers` log says about its cache. buildah runs stages concurrently and
 * their lines interleave, so a "--> Using cache" line cannot be matched to its STEP line; count
 * instead: every step buildah commits prints "--> <short id>", and a step taken from the cache
 * prints "--> Using cache <id>" first.
 */
async function readBuildahLog(file: string): Promise<{ layerSteps: number; committed: number; hits: number; pushed: number; pulled: number }> {
  const lines = (await readFile(file, 'utf8')).split('\n');
  const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  return {
    layerSteps: count(/^\[\d+\/\d+\] STEP \d+\/\d+: (RUN|COPY|ADD)\b/i),
    committed: count(/^--> [0-9a-f]{11,64}$/),
    hits: count(/^--> Using cache [0-9a-f]{64}$/),
    pushed: count(/^--> Pushing cache /),
    pulled: count(/^--> Cache pulled from remote /),
  };
}

/** Throws unless every step of a buildah log came from the cache. */
function buildahAllHit(r: Awaited<ReturnType<typeof readBuildahLog>>, what: string): void {
  if (!r.layerSteps) throw new Error('no RUN/COPY/ADD step in the buildah log');
  if (r.committed > r.hits || r.hits < r.layerSteps)
    throw new Error(`${what}: ${r.committed - r.hits} of ${r.committed} committed steps ran (${r.hits} cache hits for ${r.layerSteps} RUN/COPY/ADD steps)`);
}

/** GET a manifest (any of the OCI / Docker manifest and index types); throws unless 200. */
async function mustHaveManifest(host: string, repo: string, tag: string): Promise<void> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
    headers: {
      accept: [
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.docker.distribution.manifest.v2+json',
      ].join(', '),
    },
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${host}/${repo}:${tag}: HTTP ${res.status} (nothing exported there)`);
}

/**
 * cache:export and cache:import (issue 7): kiln's registry build cache against a cold build of
 * the same context.
 *
 *  - export: kiln's store is warm (one untimed build); each timed run is `kiln build
 *    --cache-to type=registry,…,mode=max` into a registry started empty for that run, so every
 *    blob is really uploaded (verified: the cache manifest is there, nothing "already there",
 *    no step rebuilt).
 *  - import: the cache is exported once (untimed); each timed run is `kiln build --cache-from …`
 *    into an empty KILN_ROOT (verified: every step reused from the imported cache and the image
 *    is the one the cache was made from, so a silent miss fails the row instead of timing a
 *    rebuild).
 *
 * Peers: "kiln cold (no cache)" — kiln's own build into an empty KILN_ROOT without cache flags,
 * so the kiln/tool column reads export time / cold time and import-build time / cold time — and
 * buildah 1.28 doing the same with `bud --layers --cache-to REPO` (warm store, empty registry)
 * and `--cache-from REPO` (empty storage), each step checked to have been taken from the cache.
 * BuildKit is left out: dockerd 20.10's `docker build` cannot export a registry cache.
 * Every kiln command uses `--progress rawjson` (the log the checks read), the cold one too.
 */
function cacheRuns(env: BenchEnv, ctx: string, description: string): ScenarioRun[] {
  const buildArgs = ['--build-arg', `REGISTRY=${env.registry}`];
  const logDir = join(env.work, 'cache-logs');
  const log = (what: string, i: number | string) => join(logDir, `${what}-${i}.log`);
  const kilnRoot = (tag: string) => join(env.work, 'kiln-root', `cache-${tag}`);
  const buildahBase = (tag: string) => join(env.work, 'buildah', `cache-${tag}`);
  const fresh = async (dir: string) => {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await mkdir(logDir, { recursive: true });
  };
  const freshBuildah = async (base: string) => {
    // vfs keeps plain directories and a chroot build leaves no mounts behind, but be safe.
    await measure({ argv: [`grep -o ' ${base}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l; true`], shell: true });
    await fresh(base);
  };
  const kiln = (root: string, logFile: string, extra: string[]): CommandSpec =>
    logged(
      {
        argv: [process.execPath, env.kilnBin, 'build', '-t', 'bench/cache:latest', '--progress', 'rawjson', ...buildArgs, ...extra, ...env.kilnBuildFlags, ctx],
        env: kilnEnv(env, root),
        timeoutMs: env.timeoutMs,
      },
      logFile,
    );
  const buildah = (base: string, logFile: string, extra: string[]): CommandSpec =>
    logged(buildahBud(env, base, ['--layers', '-t', 'bench/cache:latest', ...buildArgs, ...extra, ctx]), logFile);
  const noBuildah = hasBinary('buildah') ? {} : { unavailable: 'buildah is not installed' };
  const kilnCold = (tag: string): Tool => ({
    name: 'kiln cold (no cache)',
    kind: 'peer',
    before: () => fresh(kilnRoot(tag)),
    command: (i) => kiln(kilnRoot(tag), log(tag, i), []),
    async verify(i) {
      const r = await readKilnLog(log(tag, i));
      if (r.cached !== 0) throw new Error(`a cold build found ${r.cached}/${r.steps} steps cached`);
    },
  });

  // export: warm store → empty registry, every run
  const kExportReg = scratchRegistry(env);
  const bExportReg = scratchRegistry(env);
  let kExportPrimed = false;
  let bExportPrimed = false;
  const kExport: Tool = {
    name: 'kiln',
    kind: 'kiln',
    async before() {
      if (!kExportPrimed) {
        await fresh(kilnRoot('export'));
        await must(kiln(kilnRoot('export'), log('kiln-export', 'prime'), []), 'kiln build (priming, untimed)');
        kExportPrimed = true;
      }
      await kExportReg.renew();
    },
    command: (i) => kiln(kilnRoot('export'), log('kiln-export', i), ['--cache-to', `type=registry,ref=${kExportReg.host}/cache:multi,mode=max`]),
    async verify(i) {
      const r = await readKilnLog(log('kiln-export', i));
      if (r.cached !== r.steps) throw new Error(`the warm build reran ${r.ran.join('; ') || `${r.steps - r.cached} steps`}`);
      const x = r.exported;
      if (!x) throw new Error('kiln did not say it exported the cache');
      if (!(x.uploaded > 0) || x.existed || x.mounted) throw new Error(`expected every blob uploaded to an empty registry, got ${JSON.stringify(x)}`);
      await mustHaveManifest(kExportReg.host, 'cache', 'multi');
    },
  };
  const bExport: Tool = {
    name: 'buildah',
    kind: 'peer',
    ...noBuildah,
    async before() {
      if (!bExportPrimed) {
        await freshBuildah(buildahBase('export'));
        await must(buildah(buildahBase('export'), log('buildah-export', 'prime'), []), 'buildah bud --layers (priming, untimed)');
        bExportPrimed = true;
      }
      await bExportReg.renew();
    },
    command: (i) => buildah(buildahBase('export'), log('buildah-export', i), ['--cache-to', `${bExportReg.host}/cache`]),
    async verify(i) {
      const r = await readBuildahLog(log('buildah-export', i));
      buildahAllHit(r, 'the warm build was not all cached');
      if (r.pushed < r.layerSteps) throw new Error(`buildah pushed ${r.pushed} cache images for ${r.layerSteps} RUN/COPY/ADD steps`);
    },
  };

  // import: the cache is exported once; every run builds into empty storage with --cache-from
  const importReg = scratchRegistry(env);
  let kImportManifest: string | undefined;
  let bImportPrimed = false;
  const kImport: Tool = {
    name: 'kiln',
    kind: 'kiln',
    async before() {
      if (!kImportManifest) {
        await importReg.ensure();
        const root = kilnRoot('import-prime');
        await fresh(root);
        const file = log('kiln-import', 'prime');
        await must(kiln(root, file, ['--cache-to', `type=registry,ref=${importReg.host}/cache:multi,mode=max`]), 'kiln build --cache-to (priming, untimed)');
        kImportManifest = (await readKilnLog(file)).manifest;
        await rm(root, { recursive: true, force: true });
      }
      await fresh(kilnRoot('import'));
    },
    command: (i) => kiln(kilnRoot('import'), log('kiln-import', i), ['--cache-from', `type=registry,ref=${importReg.host}/cache:multi`]),
    async verify(i) {
      const r = await readKilnLog(log('kiln-import', i));
      if (!(r.steps > 0) || r.cached !== r.steps || r.reused !== r.steps)
        throw new Error(`cache miss: ${r.cached}/${r.steps} steps cached, ${r.reused} reused from the import${r.ran.length ? `; ran ${r.ran.join('; ')}` : ''}`);
      if (r.manifest !== kImportManifest) throw new Error(`built ${r.manifest}, not the cached image ${kImportManifest}`);
    },
  };
  const bImport: Tool = {
    name: 'buildah',
    kind: 'peer',
    ...noBuildah,
    async before() {
      if (!bImportPrimed) {
        await importReg.ensure();
        const base = buildahBase('import-prime');
        await freshBuildah(base);
        await must(buildah(base, log('buildah-import', 'prime'), ['--cache-to', `${importReg.host}/buildah-cache`]), 'buildah bud --cache-to (priming, untimed)');
        await freshBuildah(base);
        bImportPrimed = true;
      }
      await freshBuildah(buildahBase('import'));
    },
    command: (i) => buildah(buildahBase('import'), log('buildah-import', i), ['--cache-from', `${importReg.host}/buildah-cache`]),
    async verify(i) {
      const r = await readBuildahLog(log('buildah-import', i));
      buildahAllHit(r, 'cache miss');
      if (!r.pulled) throw new Error('cache miss: nothing pulled from the cache');
    },
  };

  return [
    {
      id: 'cache:export',
      description: `${description} — export from a warm store to an empty registry (kiln/tool: vs a cold build)`,
      tools: [kExport, kilnCold('cold-export'), bExport],
    },
    {
      id: 'cache:import',
      description: `${description} — build into empty storage with --cache-from (kiln/tool: vs a cold build)`,
      tools: [kImport, kilnCold('cold-import'), bImport],
    },
  ];
}
