/**
 * The named benchmark scenarios (issue 8). Each build scenario has its Dockerfile and static
 * context under bench/<name>/; generated inputs are written into a per-run copy of it.
 */
import { cp, mkdir, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBusyboxLayout } from '../fixtures/busybox.js';
import { ensureDebianLayout } from '../fixtures/debian.js';
import { pushLayout } from '../../test/helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../../test/helpers/registry.js';
import { allBuilders, hasBinary, kilnEnv, type BuildMode, type BuildSpec } from './builders.js';
import { ensureAssetsLayout, ensureBulkLayout, writeManyFiles } from './data.js';
import { measure, type CommandSpec } from './measure.js';
import type { BenchEnv, Scenario, ScenarioRun, Tool } from './types.js';

/** Copy bench/<name> to a scratch context dir for this run. */
async function contextCopy(env: BenchEnv, name: string): Promise<string> {
  const dir = join(env.work, 'ctx', name);
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
    description: 'four independent 3-second CPU stages (ideal on 2 cores: ~6 s)',
    quick: false,
    async setup(env) {
      await pushBusyboxTo(env);
      const ctx = await contextCopy(env, 'parallel-stages');
      return buildRuns(env, 'parallel-stages', ctx, ['cold'], this.description, { CPU_SECONDS: '3' });
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
