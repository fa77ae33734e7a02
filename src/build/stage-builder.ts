import { createHash, randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, rm, chown as fsChown } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { posix } from 'node:path';
import { DockerfileError, KilnError, type SourceRange } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { layerMediaType } from '../oci/media-types.js';
import { parseDockerRef } from '../oci/reference.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import type { ContainerConfig } from '../oci/manifest.js';
import type { MountSpec } from '../sandbox/types.js';
import { resolveInRoot } from '../util/safe-path.js';
import { PROXY_ARGS, platformArgs } from './build-args.js';
import { cacheKey, explainParts, type CacheKeyParts } from './cache-key.js';
import { parseModeSpec } from './chmod-spec.js';
import { contextFilter } from './context-filter.js';
import type { IncludeFilter } from './copy-files.js';
import { copyFiles } from './copy-files.js';
import { addUrlSources, unpackArchive } from './add-sources.js';
import { type GitCheckout, checkoutGit, isGitSource, parseGitSource } from './add-git.js';
import { type BuildShared, stageLabel, stagePlatform } from './engine.js';
import { expandWord, type Expanded } from './expand.js';
import { DEFAULT_PATH, addHistory, chainId, cloneState, containerConfig, envGet, envSet, pushLayer, scratchState, stateChainId, type ImageState } from './image-state.js';
import type { HeredocSource, Instr, StageDef } from './model.js';
import { chompHeredoc } from '../dockerfile/heredoc.js';
import { INLINE_CACHE_FIELD } from './cache-manifest.js';
import { PartialImage, literalSources } from './copy-from-image.js';

export interface StageResult {
  state: ImageState;
  /** Cache key of the stage's end state (covers content and config). */
  key: string;
  platform: Platform;
  created?: string;
}

type Source =
  | { kind: 'context'; dir: string; include?: IncludeFilter; key?: undefined }
  | { kind: 'state'; state: ImageState; key: string };

const DEFAULT_SHELL = ['/bin/sh', '-c'];

function sha(s: string): string {
  return `sha256:${createHash('sha256').update(s).digest('hex')}`;
}

/** Layers whose tar is at most this big are compressed in the background (the tar waits in memory). */
const DEFERRED_LAYER_MAX = 32 * 1024 * 1024;
/** The digest a deferred layer's descriptor holds until settled: no blob has it. */
const PENDING_DIGEST = `sha256:${'0'.repeat(64)}` as Digest;
/**
 * Runs one stage: its base, ONBUILD triggers of the base, then each
 * instruction with BuildKit's semantics. Steps that change files go through
 * the local cache (key → state); metadata steps fold into the running key.
 */
export class StageBuilder {
  private state!: ImageState;
  private key = '';
  private platform!: Platform;
  /** Declared ARGs of this stage: name → value (undefined: declared without a value). */
  private readonly args = new Map<string, string | undefined>();
  private cmdSet = false;
  private stepNo = 0;
  private baseKind: 'scratch' | 'stage' | 'image' = 'scratch';
  private baseStage: number | undefined;
  private baseRef: string | undefined;
  private readonly label: string;
  private noCache: boolean;

  constructor(
    private readonly shared: BuildShared,
    private readonly stage: StageDef,
  ) {
    this.label = stageLabel(stage);
    const filter = (shared.opts.noCacheFilter ?? []).map((s) => s.toLowerCase());
    this.noCache = shared.opts.noCache === true || filter.includes(this.label.toLowerCase()) || filter.includes(String(stage.index));
  }

  private where(range: SourceRange, instruction: string) {
    return { file: this.shared.def.file, range, instruction };
  }

  private globalEnv() {
    const auto = platformArgs(this.shared.platform, this.shared.buildPlatform);
    return { get: (k: string) => this.shared.globals.get(k) ?? auto.get(k) };
  }

  /** Resolve the base and await the stages this one needs before it takes a job slot. */
  async resolveDependencies(): Promise<void> {
    const s = this.stage;
    this.platform = stagePlatform(this.shared, s);
    const base = expandWord(s.base, this.globalEnv(), this.where(s.range, 'FROM')).value;
    for (const n of expandWord(s.base, this.globalEnv(), this.where(s.range, 'FROM')).used) this.shared.consumedArgs.add(n);
    if (base === '') throw new DockerfileError(`base name (${s.base}) should not be blank`, this.where(s.range, 'FROM'));
    const idx = this.shared.stageIndexByName(base);
    const deps: number[] = [];
    if (idx !== undefined && idx < s.index) {
      this.baseKind = 'stage';
      this.baseStage = idx;
      deps.push(idx);
    } else if (base.toLowerCase() === 'scratch') {
      this.baseKind = 'scratch';
    } else {
      this.baseKind = 'image';
      this.baseRef = base;
    }
    for (const ins of s.instructions) {
      if ((ins.kind === 'copy' || ins.kind === 'add') && ins.from !== undefined) {
        const d = this.fromStageIndex(ins.from, ins.range);
        if (d !== undefined) deps.push(d);
      }
      if (ins.kind === 'run') {
        for (const m of ins.mounts) {
          const from = /(?:^|,)from=([^,]*)/.exec(m)?.[1];
          if (from === undefined) continue;
          if (from.includes('$')) throw new DockerfileError(`'from' doesn't support variable expansion, define alias stage instead`, this.where(ins.range, 'RUN'));
          const d = this.fromStageIndex(from, ins.range);
          if (d !== undefined) deps.push(d);
        }
      }
    }
    // The base image does not depend on the stages this one copies from: its pull starts now,
    // beside them (as BuildKit resolves every FROM up front), and is awaited after them.
    let baseImage: ReturnType<StageBuilder['loadImage']> | undefined;
    if (this.baseKind === 'image') {
      const ref = this.normalizeRef(this.baseRef!, s.range);
      baseImage = this.shared.memo(`image ${ref} ${formatPlatform(this.platform)}`, () => this.loadImage(ref, this.platform));
      baseImage.catch(() => undefined); // raised below, after the dependencies' own errors
    }
    // Start every dependency at once (they run in parallel), then wait for all.
    const started = deps.map((d) => this.shared.stageResult(d));
    await Promise.all(started);
    // ONBUILD triggers of the base may COPY --from other stages: wait for those
    // too, before this stage takes a job slot (waiting inside one could deadlock).
    let triggers: string[] = [];
    if (this.baseKind === 'stage') triggers = (await this.shared.stageResult(this.baseStage!)).state.config.config?.OnBuild ?? [];
    else if (baseImage) triggers = (await baseImage).config.config?.OnBuild ?? [];
    const more: number[] = [];
    for (const t of triggers) {
      const ins = this.shared.def.parseTrigger(t, s.range);
      if ((ins.kind === 'copy' || ins.kind === 'add') && ins.from !== undefined) {
        const d = this.fromStageIndex(ins.from, ins.range);
        if (d !== undefined) more.push(d);
      }
    }
    await Promise.all(more.map((d) => this.shared.stageResult(d)));
  }

  /** The stage index a --from names, undefined for an image; refuses later stages and expansion. */
  private fromStageIndex(from: string, range: SourceRange): number | undefined {
    if (from.includes('$')) throw new DockerfileError('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', this.where(range, 'COPY'));
    if (this.shared.opts.buildContexts?.[from] !== undefined) return undefined;
    const byName = this.shared.stageIndexByName(from);
    if (byName !== undefined) {
      if (byName >= this.stage.index) {
        throw new DockerfileError(`cannot copy from stage "${from}", it needs to be defined before current stage "${this.label}"`, this.where(range, 'COPY'));
      }
      return byName;
    }
    if (/^[0-9]+$/.test(from)) {
      const n = Number(from);
      if (n >= this.stage.index) throw new DockerfileError(`cannot copy from stage "${from}", it needs to be defined before current stage "${this.label}"`, this.where(range, 'COPY'));
      return n;
    }
    return undefined;
  }

  async build(): Promise<StageResult> {
    await this.initBase();
    const triggers = containerConfig(this.state).OnBuild ?? [];
    if (containerConfig(this.state).OnBuild !== undefined) delete containerConfig(this.state).OnBuild;
    for (const t of triggers) {
      const ins = this.shared.def.parseTrigger(t, this.stage.range);
      if ((ins.kind === 'copy' || ins.kind === 'add') && ins.from !== undefined) {
        const d = this.fromStageIndex(ins.from, ins.range);
        if (d !== undefined) await this.shared.stageResult(d);
      }
      await this.dispatch(ins);
    }
    for (const ins of this.stage.instructions) {
      this.shared.opts.signal?.throwIfAborted();
      await this.dispatch(ins);
    }
    return { state: this.state, key: this.key, platform: this.platform };
  }

  private async initBase(): Promise<void> {
    const p = this.platform;
    if (this.baseKind === 'stage') {
      const r = await this.shared.stageResult(this.baseStage!);
      this.state = cloneState(r.state);
      this.key = sha(`stage ${r.key}`);
      return;
    }
    if (this.baseKind === 'scratch') {
      this.state = scratchState(p);
      this.key = sha(`scratch ${formatPlatform(p)}`);
      return;
    }
    const ref = this.normalizeRef(this.baseRef!, this.stage.range);
    // Shared by every stage with this base: resolved (and reported) once.
    const img = await this.shared.memo(`image ${ref} ${formatPlatform(p)}`, () => this.loadImage(ref, p));
    const config = JSON.parse(JSON.stringify(img.config)) as ImageState['config'];
    config.config ??= {};
    if (envGet(config.config.Env, 'PATH') === undefined) config.config.Env = [DEFAULT_PATH, ...(config.config.Env ?? [])];
    config.history ??= [];
    delete config.created;
    // A base image's inline build cache describes the base's build, not ours.
    delete (config as unknown as Record<string, unknown>)[INLINE_CACHE_FIELD];
    this.state = { config, layers: img.layers.map((l) => ({ ...l })) };
    // Kept readable: --explain reports a changed base digest from it.
    this.key = `base:${img.manifestDigest}`;
  }

  private async loadImage(ref: string, p: Platform) {
    const id = `${this.label}/from`;
    const t0 = Date.now();
    this.shared.emit({ type: 'step-start', id, stage: this.label, name: `[internal] load metadata for ${ref}`, time: t0 });
    try {
      const img = await this.shared.runtime.resolveImage(ref, p, { pull: this.shared.opts.pull === true, signal: this.shared.opts.signal });
      this.shared.emit({ type: 'step-done', id, cached: false, durationMs: Date.now() - t0, time: Date.now() });
      return img;
    } catch (err) {
      this.shared.emit({ type: 'step-done', id, cached: false, durationMs: Date.now() - t0, error: (err as Error).message, time: Date.now() });
      if (err instanceof KilnError && !(err instanceof DockerfileError)) {
        (err as KilnError & { dockerfile?: unknown }).dockerfile ??= { file: this.shared.def.file, range: this.stage.range };
      }
      throw err;
    }
  }

  private normalizeRef(ref: string, range: SourceRange): string {
    const ctx = this.shared.opts.buildContexts?.[ref];
    if (ctx !== undefined) {
      if (ctx.startsWith('docker-image://')) ref = ctx.slice('docker-image://'.length);
      else if (ctx.startsWith('oci-layout://')) {
        // An image in an OCI layout on disk: oci-layout://PATH[:TAG|@DIGEST], resolved by the runtime.
        const spec = ctx.slice('oci-layout://'.length);
        const m = /^(.*?)((?:@sha256:[a-f0-9]{64})|(?::[\w][\w.-]{0,127}))?$/.exec(spec)!;
        return `oci-layout://${posix.resolve(m[1]!)}${m[2] ?? ':latest'}`;
      } else throw new KilnError('BUILD_CONTEXT', `Cannot use build context "${ref}=${ctx}" as an image: only docker-image:// and oci-layout:// contexts are images`);
    }
    try {
      return parseDockerRef(ref).toString();
    } catch (err) {
      throw new DockerfileError(`failed to parse image reference "${ref}": ${(err as Error).message}`, { ...this.where(range, 'FROM'), cause: err });
    }
  }

  // ---------- variables ----------

  /** Lookup for expansion: ENV wins over ARG (BuildKit). */
  private lookup() {
    const env = containerConfig(this.state).Env;
    return {
      get: (k: string): string | undefined => {
        const e = envGet(env, k);
        if (e !== undefined) return e;
        return this.args.has(k) ? this.args.get(k) : undefined;
      },
    };
  }

  private expand(word: string, ins: Instr, opts: { heredoc?: boolean } = {}): Expanded & { values: Record<string, string> } {
    const look = this.lookup();
    const r = expandWord(word, look, this.where(ins.range, ins.kind.toUpperCase()));
    if (opts.heredoc) {
      // Heredoc bodies keep quotes: expansion only.
      const { processWordWithMatches } = this.lexer();
      const h = processWordWithMatches(word, look, { skipProcessQuotes: true });
      r.value = h.result;
    }
    const values: Record<string, string> = {};
    for (const n of r.used) {
      const v = look.get(n);
      values[n] = v === undefined ? '\u0000unset' : v;
    }
    return { ...r, values };
  }

  private lexerMod: typeof import('../dockerfile/shell-lexer.js') | undefined;
  private lexer() {
    return this.lexerMod!;
  }

  /** Environment of a RUN: image env, then declared args with values, then proxy build args. */
  private runEnv(): { env: string[]; keyArgs: Record<string, string> } {
    let env = [...(containerConfig(this.state).Env ?? [])];
    const keyArgs: Record<string, string> = {};
    for (const [k, v] of this.args) {
      if (v === undefined) continue;
      if (envGet(env, k) !== undefined) continue;
      env = envSet(env, k, v);
      if (!PROXY_ARGS.has(k)) keyArgs[k] = v;
    }
    for (const [k, v] of this.shared.buildArgs) {
      if (PROXY_ARGS.has(k) && envGet(env, k) === undefined) env = envSet(env, k, v);
    }
    return { env, keyArgs };
  }

  // ---------- dispatch ----------

  private async dispatch(ins: Instr): Promise<void> {
    this.lexerMod ??= await import('../dockerfile/shell-lexer.js');
    const idx = ++this.stepNo;
    const cfg = containerConfig(this.state);
    const hist = (text: string) => addHistory(this.state, text, true);
    // Metadata steps do not enter the running key: what a later step reads of
    // them (env, workdir, user, shell, arg values) is part of that step's own
    // key parts, so e.g. a changed LABEL or an ARG nothing reads keeps hits.
    const meta = (_desc: string) => undefined;
    switch (ins.kind) {
      case 'env': {
        const parts: string[] = [];
        for (const [k0, v0] of ins.pairs) {
          const k = this.expand(k0, ins).value;
          const v = this.expand(v0, ins).value;
          cfg.Env = envSet(cfg.Env ?? [], k, v);
          parts.push(`${k}=${v}`);
        }
        hist(`ENV ${parts.join(' ')}`);
        meta(`ENV ${JSON.stringify(parts)}`);
        return;
      }
      case 'label': {
        const parts: string[] = [];
        for (const [k0, v0] of ins.pairs) {
          const k = this.expand(k0, ins).value;
          const v = this.expand(v0, ins).value;
          cfg.Labels = { ...(cfg.Labels ?? {}), [k]: v };
          parts.push(`${k}=${v}`);
        }
        hist(`LABEL ${parts.join(' ')}`);
        meta(`LABEL ${parts.join(' ')}`);
        return;
      }
      case 'arg': {
        const parts: string[] = [];
        const auto = platformArgs(this.platform, this.shared.buildPlatform);
        for (const a of ins.args) {
          this.shared.consumedArgs.add(a.name);
          let v: string | undefined;
          if (this.shared.buildArgs.has(a.name)) v = this.shared.buildArgs.get(a.name);
          else if (a.value !== undefined) v = this.expand(a.value, ins).value;
          else if (this.shared.globals.has(a.name)) v = this.shared.globals.get(a.name);
          else if (auto.has(a.name)) v = auto.get(a.name);
          else if (a.name === 'TARGETSTAGE') v = this.shared.targetStageName;
          this.args.set(a.name, v);
          parts.push(v === undefined ? a.name : `${a.name}=${v}`);
        }
        hist(`ARG ${parts.join(' ')}`);
        meta(`ARG ${JSON.stringify(parts)}`);
        return;
      }
      case 'cmd':
      case 'entrypoint': {
        const args = ins.shell ? [...(cfg.Shell ?? DEFAULT_SHELL), ins.args.join(' ')] : [...ins.args];
        if (ins.kind === 'cmd') {
          cfg.Cmd = args;
          this.cmdSet = true;
        } else {
          cfg.Entrypoint = args;
          if (!this.cmdSet) cfg.Cmd = null;
        }
        const text = `${ins.kind.toUpperCase()} ${JSON.stringify(args)}`;
        hist(text);
        meta(text);
        return;
      }
      case 'expose': {
        const ports: string[] = [];
        for (const p of ins.ports) for (const w of this.expand(p, ins).words) ports.push(normalizePort(w, this.where(ins.range, 'EXPOSE')));
        cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}) };
        for (const p of ports) cfg.ExposedPorts[p] = {};
        hist(`EXPOSE map[${ports.map((p) => `${p}:{}`).join(' ')}]`);
        meta(`EXPOSE ${ports.join(' ')}`);
        return;
      }
      case 'volume': {
        cfg.Volumes = { ...(cfg.Volumes ?? {}) };
        const vols: string[] = [];
        for (const p of ins.paths) {
          const v = this.expand(p, ins).value;
          if (v.trim() === '') throw new DockerfileError('VOLUME specified can not be an empty string', this.where(ins.range, 'VOLUME'));
          cfg.Volumes[v] = {};
          vols.push(v);
        }
        hist(`VOLUME [${vols.join(' ')}]`);
        meta(`VOLUME ${JSON.stringify(vols)}`);
        return;
      }
      case 'user': {
        cfg.User = this.expand(ins.user, ins).value;
        hist(`USER ${cfg.User}`);
        meta(`USER ${cfg.User}`);
        return;
      }
      case 'shell': {
        cfg.Shell = [...ins.shell];
        hist(`SHELL [${ins.shell.join(' ')}]`);
        meta(`SHELL ${JSON.stringify(ins.shell)}`);
        return;
      }
      case 'stopsignal': {
        cfg.StopSignal = this.expand(ins.signal, ins).value;
        hist(`STOPSIGNAL ${cfg.StopSignal}`);
        meta(`STOPSIGNAL ${cfg.StopSignal}`);
        return;
      }
      case 'maintainer': {
        this.state.config.author = ins.name;
        hist(`MAINTAINER ${ins.name}`);
        meta(`MAINTAINER ${ins.name}`);
        return;
      }
      case 'onbuild': {
        cfg.OnBuild = [...(cfg.OnBuild ?? []), ins.expression];
        hist(`ONBUILD ${ins.expression}`);
        meta(`ONBUILD ${ins.expression}`);
        return;
      }
      case 'healthcheck': {
        if (ins.none) cfg.Healthcheck = { Test: ['NONE'] };
        else {
          const hc: NonNullable<ContainerConfig['Healthcheck']> = { Test: ins.test };
          if (ins.interval !== undefined) hc.Interval = ins.interval;
          if (ins.timeout !== undefined) hc.Timeout = ins.timeout;
          if (ins.startPeriod !== undefined) hc.StartPeriod = ins.startPeriod;
          if (ins.startInterval !== undefined) hc.StartInterval = ins.startInterval;
          if (ins.retries !== undefined) hc.Retries = ins.retries;
          cfg.Healthcheck = hc;
        }
        const text = `HEALTHCHECK ${JSON.stringify(cfg.Healthcheck)}`;
        hist(text);
        meta(text);
        return;
      }
      case 'workdir':
        return this.workdir(ins, idx);
      case 'run':
        return this.run(ins, idx);
      case 'copy':
      case 'add':
        return this.copy(ins, idx);
    }
  }

  // ---------- steps with a filesystem effect ----------

  private async workdir(ins: Extract<Instr, { kind: 'workdir' }>, idx: number): Promise<void> {
    const cfg = containerConfig(this.state);
    const e = this.expand(ins.path, ins);
    const dir = posix.resolve(posix.join('/', cfg.WorkingDir || '/'), e.value);
    cfg.WorkingDir = dir;
    const user = cfg.User ?? '';
    await this.layerStep(
      ins,
      idx,
      `WORKDIR ${dir}`,
      { instruction: `WORKDIR ${dir} user=${user}`, args: e.values },
      async (rootfs) => {
        const owner = user ? await this.shared.runtime.resolveUser(rootfs, user) : { uid: 0, gid: 0 };
        await mkdirAs(rootfs, dir, owner.uid, owner.gid);
      },
      { workdir: true },
    );
  }

  private async run(ins: Extract<Instr, { kind: 'run' }>, idx: number): Promise<void> {
    const cfg = containerConfig(this.state);
    const shell = cfg.Shell ?? DEFAULT_SHELL;
    let argv: string[];
    let display: string;
    const files: MountSpec[] = [];
    const heredocs = ins.heredocs.map((h) => ({ ...h, content: h.content }));
    if (ins.shell) {
      const line = ins.cmd.join(' ');
      const simple = heredocs.length === 1 && /^<<-?\s*["']?\w[\w.-]*["']?\s*$/.test(line.trim());
      if (simple) {
        const h = heredocs[0]!;
        let body = h.content;
        if (h.chomp) body = chompHeredoc(body);
        if (body.startsWith('#!')) {
          const target = `/dev/pipes/${h.name}`;
          files.push({ type: 'file', target, content: Buffer.from(body), mode: 0o755 });
          argv = [target];
        } else {
          argv = [...shell, body];
        }
        display = `${shell.join(' ')} ${line}`;
      } else if (heredocs.length > 0) {
        const script = [line, ...heredocs.map((h) => `${h.content}${h.name}`)].join('\n');
        argv = [...shell, script];
        display = `${shell.join(' ')} ${line}`;
      } else {
        argv = [...shell, line];
        display = `${shell.join(' ')} ${line}`;
      }
    } else {
      argv = [...ins.cmd];
      display = ins.cmd.join(' ');
    }
    const { env, keyArgs } = this.runEnv();
    const network = ins.network ?? 'default';
    if (!['default', 'none', 'host'].includes(network)) {
      throw new DockerfileError(`unsupported network mode "${network}"`, this.where(ins.range, 'RUN'));
    }
    if (ins.security !== undefined && ins.security !== 'sandbox') {
      throw new DockerfileError(`RUN --security=${ins.security} is not supported by kiln`, this.where(ins.range, 'RUN'));
    }
    const mountInputs: Record<string, string> = {};
    for (const m of ins.mounts) {
      const from = /(?:^|,)from=([^,]*)/.exec(m)?.[1];
      if (from !== undefined) mountInputs[`mount from ${from}`] = await this.sourceKey(from, ins);
      if (/(?:^|,)type=bind/.test(m) || !/(?:^|,)type=/.test(m)) {
        if (from === undefined) {
          const src = /(?:^|,)(?:source|src)=([^,]*)/.exec(m)?.[1] ?? '.';
          const filter = await contextFilter(this.shared.opts.contextDir, this.dockerfilePath());
          mountInputs[`mount context ${src}`] = (await this.shared.hasher.hashSelection(this.shared.opts.contextDir, [src], filter)).digest;
        }
      }
    }
    const argPrefix = Object.keys(keyArgs).length ? `|${Object.keys(keyArgs).length} ${Object.entries(keyArgs).map(([k, v]) => `${k}=${v}`).join(' ')} ` : '';
    const history = `RUN ${argPrefix}${display} # buildkit`;
    const parts = {
      instruction: `RUN ${JSON.stringify({ argv, files: files.map((f) => [f.type === 'file' ? f.target : '', f.type === 'file' ? f.content.toString() : '']), mounts: ins.mounts, network, user: cfg.User ?? '', workdir: cfg.WorkingDir ?? '/', env: cfg.Env ?? [] })}`,
      args: keyArgs,
      inputs: mountInputs,
    };
    await this.layerStep(ins, idx, history, parts, async (rootfs, onOutput) => {
      const rt = this.shared.runtime;
      const user = await rt.resolveUser(rootfs, cfg.User || 'root');
      const contextInclude = await contextFilter(this.shared.opts.contextDir, this.dockerfilePath());
      const mounts = await rt.runMounts(ins.mounts, {
        contextDir: this.shared.opts.contextDir,
        ...(contextInclude ? { contextInclude } : {}),
        rootfsOf: (from) => this.rootfsOf(from, ins),
        kilnRoot: this.shared.opts.kilnRoot ?? rt.store.root,
        secrets: this.shared.opts.secrets ?? [],
        sshSockets: this.shared.sshSockets,
        rootfs,
        expand: (w) => this.expand(w, ins).value,
        ...(this.shared.opts.signal ? { signal: this.shared.opts.signal } : {}),
      });
      try {
        const exec = await rt.executor();
        await exec.run(
          {
            rootfs,
            args: argv,
            env: mounts.env.length ? mergeEnv(env, mounts.env) : env,
            cwd: cfg.WorkingDir || '/',
            user,
            network: network === 'none' ? 'none' : 'host',
            mounts: [...files, ...mounts.mounts],
            onOutput,
            display: JSON.stringify(display),
          },
          { signal: this.shared.opts.signal },
        );
      } finally {
        await mounts.release();
        await this.releaseViews();
      }
    });
  }

  private dockerfilePath(): string | undefined {
    const d = this.shared.opts.dockerfile;
    return 'path' in d ? d.path : undefined;
  }

  private views: Array<() => Promise<void>> = [];
  private async releaseViews(): Promise<void> {
    const v = this.views;
    this.views = [];
    for (const r of v) await r().catch(() => undefined);
  }

  /**
   * A stage's or image's rootfs (a prepared snapshot), released after the step. `readOnly`: the
   * caller only reads it (COPY --from), so the snapshotter's view will do.
   */
  private async rootfsOf(from: string, ins: Instr, readOnly = false): Promise<string> {
    const src = await this.resolveSource(from, ins);
    if (src.kind === 'context') return src.dir;
    const snap = await this.shared.runtime.snapshotter();
    const parent = await this.materialize(src.state);
    const key = `view-${randomBytes(8).toString('hex')}`;
    const fs = readOnly && parent !== undefined ? await snap.view(key, parent) : await snap.prepare(key, parent);
    this.views.push(async () => {
      await fs.release();
      await snap.remove(key);
    });
    return fs.path;
  }

  private async resolveSource(from: string | undefined, ins: Instr): Promise<Source> {
    if (from === undefined) {
      return { kind: 'context', dir: this.shared.opts.contextDir, include: await contextFilter(this.shared.opts.contextDir, this.dockerfilePath()) };
    }
    const named = this.shared.opts.buildContexts?.[from];
    if (named !== undefined && !named.startsWith('docker-image://') && !named.startsWith('oci-layout://')) {
      if (named.includes('://')) throw new KilnError('BUILD_CONTEXT', `Build context "${from}=${named}" is not supported: use a directory, docker-image://REF or oci-layout://PATH`);
      return { kind: 'context', dir: posix.resolve(this.shared.opts.contextDir, named) };
    }
    const idx = this.fromStageIndex(from, ins.range);
    if (idx !== undefined) {
      const r = await this.shared.stageResult(idx);
      return { kind: 'state', state: r.state, key: r.key };
    }
    const ref = this.normalizeRef(from, ins.range);
    const img = await this.shared.memo(`image ${ref} ${formatPlatform(this.platform)}`, () => this.loadImage(ref, this.platform));
    return { kind: 'state', state: { config: img.config, layers: img.layers }, key: `image ${img.manifestDigest}` };
  }

  private async sourceKey(from: string, ins: Instr): Promise<string> {
    const s = await this.resolveSource(from, ins);
    return s.kind === 'context' ? `context ${s.dir}` : s.key;
  }

  private async copy(ins: Extract<Instr, { kind: 'copy' | 'add' }>, idx: number): Promise<void> {
    const cfg = containerConfig(this.state);
    const KW = ins.kind.toUpperCase();
    if (ins.parents && ins.sources.some((x) => x.includes('/./'))) {
      throw new DockerfileError(`${KW} --parents with a "/./" pivot in a source is not supported by kiln yet`, this.where(ins.range, KW));
    }
    const values: Record<string, string> = {};
    const ex = (w: string) => {
      const r = this.expand(w, ins);
      Object.assign(values, r.values);
      return r.value;
    };
    const sources = ins.sources.map(ex);
    const dest = ex(ins.dest);
    const chown = ins.chown !== undefined ? ex(ins.chown) : undefined;
    const chmodText = ins.chmod !== undefined ? ex(ins.chmod) : undefined;
    let chmod;
    try {
      chmod = chmodText !== undefined ? parseModeSpec(chmodText) : undefined;
    } catch (err) {
      throw new DockerfileError((err as Error).message, this.where(ins.range, KW));
    }
    const excludes = ins.excludes.map(ex);
    const heredocs = ins.heredocs.map((h) => ({ name: h.name, content: this.heredocBody(h, ins) }));
    const gits = ins.kind === 'add' ? sources.filter(isGitSource) : [];
    const urls = ins.kind === 'add' ? sources.filter((s) => /^https?:\/\//i.test(s) && !gits.includes(s)) : [];
    if (ins.checksum !== undefined && urls.length === 0) throw new DockerfileError('checksum can\'t be specified for non-HTTP(S) sources', this.where(ins.range, KW));
    if (ins.keepGitDir !== undefined && gits.length === 0) throw new DockerfileError('--keep-git-dir can only be used with git sources', this.where(ins.range, KW));
    const local = sources.filter((s) => !urls.includes(s) && !gits.includes(s));
    const downloaded = urls.length ? await addUrlSources(urls, ins.checksum !== undefined ? ex(ins.checksum) : undefined) : [];
    // Git sources are fetched before the key: the commit they resolve to is part of it.
    const checkouts: GitCheckout[] = [];
    try {
      for (const g of gits) checkouts.push(await checkoutGit(parseGitSource(g), { keepGitDir: ins.keepGitDir === true }));
    } catch (err) {
      for (const c of checkouts) await c.release();
      throw err;
    }
    try {
      await this.copyStep(ins, idx, { KW, cfg, values, sources, local, dest, chown, chmodText, chmod, excludes, heredocs, urls, downloaded, gits, checkouts });
    } finally {
      for (const c of checkouts) await c.release();
    }
  }

  private async copyStep(
    ins: Extract<Instr, { kind: 'copy' | 'add' }>,
    idx: number,
    a: {
      KW: string;
      cfg: ReturnType<typeof containerConfig>;
      values: Record<string, string>;
      sources: string[];
      local: string[];
      dest: string;
      chown: string | undefined;
      chmodText: string | undefined;
      chmod: ReturnType<typeof parseModeSpec> | undefined;
      excludes: string[];
      heredocs: Array<{ name: string; content: string }>;
      urls: string[];
      downloaded: Awaited<ReturnType<typeof addUrlSources>>;
      gits: string[];
      checkouts: GitCheckout[];
    },
  ): Promise<void> {
    const { KW, cfg, values, sources, local, dest, chown, chmodText, chmod, excludes, heredocs, downloaded, gits, checkouts } = a;
    // COPY --from=<image> of literal paths: manifest + config only; the step fetches just the top layers it needs.
    const partial = local.length ? await this.partialImageOf(ins, local, excludes) : undefined;
    const src = partial ? partial.source : local.length ? await this.resolveSource(ins.from, ins) : ({ kind: 'context', dir: this.shared.opts.contextDir } as Source);
    let sourcesPart: CacheKeyParts['sources'];
    const inputs: Record<string, string> = {};
    if (src.kind === 'context' && local.length) sourcesPart = await this.shared.hasher.hashSelection(src.dir, local, src.include);
    if (src.kind === 'state') inputs.from = src.key;
    for (const d of downloaded) inputs[`url ${d.url}`] = d.digest;
    gits.forEach((g, i) => (inputs[`git ${g}`] = checkouts[i]!.commit));
    const flags = [
      ins.from !== undefined ? `--from=${ins.from}` : '',
      chown !== undefined ? `--chown=${chown}` : '',
      chmodText !== undefined ? `--chmod=${chmodText}` : '',
      ins.link ? '--link' : '',
      ins.parents ? '--parents' : '',
      ...excludes.map((e) => `--exclude=${e}`),
      ins.unpack !== undefined ? `--unpack=${ins.unpack}` : '',
      ins.keepGitDir !== undefined ? `--keep-git-dir=${ins.keepGitDir}` : '',
    ].filter(Boolean);
    const shown = [...flags, ...sources, ...heredocs.map((h) => `<<${h.name}`), dest].join(' ');
    const history = `${KW} ${shown} # buildkit`;
    const parts = {
      instruction: `${KW} ${JSON.stringify({ flags, sources, dest, heredocs, workdir: cfg.WorkingDir ?? '/' })}`,
      args: values,
      sources: sourcesPart,
      inputs,
    };
    await this.layerStep(ins, idx, history, parts, async (rootfs) => {
      const rt = this.shared.runtime;
      const owner = chown !== undefined ? await rt.resolveChown(rootfs, chown) : undefined;
      let srcRoot = src.kind === 'context' ? src.dir : ((partial && (await partial.rootfs())) ?? (await this.rootfsOf(ins.from!, ins, true)));
      try {
        const unpackAllowed = ins.kind === 'add' && ins.unpack !== false;
        await copyFiles({
          srcRoot,
          fromContext: src.kind === 'context',
          include: src.kind === 'context' ? src.include : undefined,
          sources: local,
          inline: [...heredocs.map((h) => ({ name: h.name, content: Buffer.from(h.content) })), ...downloaded.map((d) => ({ name: d.name, content: d.content, mode: 0o600, mtime: d.mtime }))],
          dest,
          workdir: cfg.WorkingDir || '/',
          destRoot: rootfs,
          chown: owner,
          chmod,
          excludes,
          parents: ins.parents,
          // A stage's view or a partial image's private extraction: nothing writes to either.
          linkFiles: src.kind === 'state',
          unpack: unpackAllowed
            ? async (file, dir) => {
                if (!owner && !chmod) return unpackArchive(rt, file, dir);
                // --chown/--chmod apply to the extracted entries too: extract aside, then copy in.
                const tmp = await mkdtemp(posix.join(tmpdir(), 'kiln-unpack-'));
                try {
                  if (!(await unpackArchive(rt, file, tmp))) return false;
                  await copyFiles({ srcRoot: tmp, fromContext: false, sources: ['.'], dest: `/${posix.relative(rootfs, dir)}/`, workdir: '/', destRoot: rootfs, chown: owner, chmod });
                  return true;
                } finally {
                  await rm(tmp, { recursive: true, force: true });
                }
              }
            : undefined,
        });
        // A git source is a directory: its tree goes into the destination directory.
        for (const c of checkouts) {
          await copyFiles({ srcRoot: c.dir, fromContext: true, sources: ['.'], dest: dest.endsWith('/') ? dest : `${dest}/`, workdir: cfg.WorkingDir || '/', destRoot: rootfs, chown: owner, chmod, excludes });
        }
      } catch (err) {
        if (err instanceof KilnError && !(err instanceof DockerfileError)) {
          throw new DockerfileError(err.message, { ...this.where(ins.range, KW), code: err.code, cause: err });
        }
        throw err;
      } finally {
        srcRoot = '';
        await this.releaseViews();
      }
    }, { freshDest: this.freshDestOf(ins, cfg.WorkingDir || '/', dest, chown) });
  }

  /**
   * A COPY's destination, for Snapshotter.prepareFresh (the step may write without a mount if
   * part of it is new). Not for ADD, whose archives and checkouts may hold links that lead out
   * of the destination, nor for --chown, whose names are read from the rootfs.
   */
  private freshDestOf(ins: Extract<Instr, { kind: 'copy' | 'add' }>, workdir: string, dest: string, chown: string | undefined): string | undefined {
    if (ins.kind !== 'copy' || chown !== undefined) return undefined;
    return posix.resolve('/', workdir, dest);
  }

  /**
   * For `COPY --from=<image>` (not a stage, not a local build context) whose
   * sources are all literal paths, and no image stored locally under the
   * reference: the image resolved without its layers (copy-from-image.ts).
   * Its cache key is the full path's (`image <manifest digest>`). `rootfs()`
   * gives a scratch rootfs of only the top layers that settle the sources
   * (released with the step's views), or undefined when unsure: the caller
   * then takes the full path (rootfsOf). Undefined when not applicable.
   */
  private async partialImageOf(ins: Extract<Instr, { kind: 'copy' | 'add' }>, local: string[], excludes: string[]) {
    const from = ins.from;
    if (ins.kind !== 'copy' || from === undefined || ins.parents || excludes.length > 0 || !literalSources(local)) return undefined;
    const named = this.shared.opts.buildContexts?.[from];
    if (named !== undefined && !named.startsWith('docker-image://')) return undefined;
    if (this.fromStageIndex(from, ins.range) !== undefined) return undefined;
    const ref = this.normalizeRef(from, ins.range);
    const rt = this.shared.runtime;
    if (ref.startsWith('oci-layout://') || (!this.shared.opts.pull && (await rt.store.getTag(ref)))) return undefined;
    const signal = this.shared.opts.signal;
    const img = await PartialImage.open(ref, { store: rt.store, platform: this.platform, insecureRegistries: this.shared.opts.insecureRegistries ?? [], ...(signal ? { signal } : {}) }).catch((err) => {
      if (signal?.aborted) throw err;
      return undefined; // the full path resolves (and reports) it
    });
    if (!img) return undefined;
    const source: Source = { kind: 'state', state: { config: img.config, layers: img.layers }, key: `image ${img.manifestDigest}` };
    const rootfs = async (): Promise<string | undefined> => {
      const x = await img.extract(local, rt.applyLayer);
      if (!x) return undefined;
      this.views.push(x.release);
      this.shared.emit({ type: 'info', message: `COPY --from=${from}: used ${x.layersFetched} of ${x.layersTotal} layers (${x.bytesUsed} of ${x.bytesTotal} bytes)`, time: Date.now() });
      return x.dir;
    };
    return { source, rootfs };
  }

  private heredocBody(h: HeredocSource, ins: Instr): string {
    let body = h.content;
    if (h.expand) body = this.expand(body, ins, { heredoc: true }).value;
    return body;
  }

  /**
   * Drop 'modify' changes of directories whose metadata equals the parent's:
   * a copied-up directory (a sandbox mountpoint placeholder created and
   * removed, a file inside touched and restored) is not a change, as
   * BuildKit's differ sees it. Parent directories of real changes are added
   * back by the layer writer.
   */
  private async pruneUnchangedDirs(snap: import('../snapshot/types.js').Snapshotter, active: string, parent: string | undefined, root: string, changes: import('../layer/types.js').Change[]) {
    const candidates = changes.filter((c) => c.kind === 'modify' && !c.opaque);
    if (candidates.length === 0 || parent === undefined) return changes;
    const dirs: typeof candidates = [];
    for (const c of candidates) {
      // Synchronous: a RUN that rewrites 5,000 files has 5,000 candidates.
      const st = lstatSync(posix.join(root, c.path), { throwIfNoEntry: false });
      if (st?.isDirectory()) dirs.push(c);
    }
    if (dirs.length === 0) return changes;
    // Read from the parent's layers directly (no mount); "unsure" comes back undefined and keeps the change.
    const before = await snap.parentStats(active, dirs.map((c) => c.path));
    const drop = new Set<string>();
    for (const c of dirs) {
      const a = lstatSync(posix.join(root, c.path));
      const b = before.get(c.path);
      if (b && b.isDirectory() && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && Math.floor(a.mtimeMs) === Math.floor(b.mtimeMs)) drop.add(c.path);
    }
    return changes.filter((c) => !drop.has(c.path));
  }

  private prefetched = false;

  /**
   * After a cache miss every later step of the stage runs too (their keys
   * chain on this one), so the stages they COPY --from will be needed: start
   * extracting them now, alongside this step's own work, rather than one after
   * another when each COPY comes. A warm build never gets here. Errors surface
   * where the snapshot is awaited (the memo keeps the promise).
   */
  private prefetchCopySources(ins: Instr): void {
    if (this.prefetched) return;
    this.prefetched = true;
    const start = Math.max(0, this.stage.instructions.indexOf(ins));
    for (const later of this.stage.instructions.slice(start)) {
      if ((later.kind !== 'copy' && later.kind !== 'add') || later.from === undefined) continue;
      let dep: number | undefined;
      try {
        dep = this.fromStageIndex(later.from, later.range);
      } catch {
        continue; // reported when the step itself runs
      }
      if (dep === undefined) continue;
      void this.shared
        .stageResult(dep)
        .then((r) => this.materialize(r.state))
        .catch(() => undefined);
    }
  }

  /** Make sure the committed snapshot of `state`'s layers exists; returns its id. */
  private async materialize(state: ImageState): Promise<string | undefined> {
    const rt = this.shared.runtime;
    const snap = await rt.snapshotter();
    let parent: string | undefined;
    for (let i = 0; i < state.layers.length; i++) {
      const id = chainId(state.layers.slice(0, i + 1).map((l) => l.diffId))!;
      const layer = state.layers[i]!;
      const p = parent;
      await this.shared.memo(`snapshot ${id}`, async () => {
        if (await snap.exists(id)) return;
        await snap.createCommitted(id, p, async (dir, mode, info) => {
          if (layer.descriptor.size < 0) await this.shared.settleLayers({ config: {} as ImageState['config'], layers: [layer] });
          // The snapshotter names the opaque xattr its mounts honour (user.overlay.opaque
          // with userxattr): trusted.* cannot be set rootless.
          await rt.applyLayer({ store: rt.store, digest: layer.descriptor.digest, size: layer.descriptor.size }, dir, {
            mediaType: layer.descriptor.mediaType,
            whiteoutMode: mode === 'overlay' ? 'overlay' : 'delete',
            overlayOpaqueXattr: info.opaqueXattr,
          });
          // applyLayer never writes trusted.overlay.* (tar xattrs of that family are dropped).
          return { opaqueMarksAsAsked: true };
        });
      });
      parent = id;
    }
    return parent;
  }

  /** Parts with the per-file source digests filled in from the context hasher's selection lists (for --explain). */
  private async withFileLists(parts: CacheKeyParts): Promise<CacheKeyParts> {
    if (!parts.sources || parts.sources.files) return parts;
    return { ...parts, sources: { digest: parts.sources.digest, files: await this.shared.hasher.filesOf(parts.sources.digest) } };
  }

  /**
   * A step that may change files: look up its key; on a miss prepare a
   * rootfs on the parent snapshot, run `work`, turn the changes into a layer,
   * commit the snapshot under the new chain id and store the record.
   */
  private async layerStep(
    ins: Instr,
    idx: number,
    history: string,
    p: Omit<CacheKeyParts, 'parent' | 'platform'>,
    work: (rootfs: string, onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => void) => Promise<void>,
    opts: { workdir?: boolean; freshDest?: string } = {},
  ): Promise<void> {
    const sh = this.shared;
    const parts: CacheKeyParts = { ...p, parent: this.key, platform: formatPlatform(this.platform) };
    // The layer's compression is part of the result: a zstd build does not reuse gzip layers.
    const comp = sh.opts.compression;
    if (comp && (comp.compression !== 'gzip' || comp.level !== undefined)) parts.inputs = { ...(parts.inputs ?? {}), compression: `${comp.compression}${comp.level !== undefined ? `,level=${comp.level}` : ''}` };
    const key = cacheKey(parts);
    const id = `${this.label}/${idx}`;
    const name = `[${this.label} ${idx}/${this.stage.instructions.length}] ${ins.original.split('\n')[0]}`;
    const traceKey = `${this.label}#${idx}`;
    sh.trace.push({ stage: this.label, index: idx, instruction: ins.original.split('\n')[0]!, key, parts });
    sh.stats.steps++;
    const rec = this.noCache ? undefined : await sh.cache.get(key);
    if (sh.opts.explain) {
      const prev = sh.previousTrace.get(traceKey);
      // The per-file lists are read only when the selection differs from the previous build's.
      const lists = prev !== undefined && prev.parts.sources?.digest !== parts.sources?.digest;
      const reasons = rec ? [] : this.noCache ? ['--no-cache'] : explainParts(prev && (lists ? await this.withFileLists(prev.parts) : prev.parts), lists ? await this.withFileLists(parts) : parts);
      sh.emit({ type: 'explain', id, name, hit: rec !== undefined, reasons, time: Date.now() });
    }
    if (rec) {
      // Take the step's result (layers, its history entry) from the record;
      // keep this build's config and earlier history.
      const recHistory = rec.state.config.history ?? [];
      this.state.layers = rec.state.layers.map((l) => ({ descriptor: { ...l.descriptor }, diffId: l.diffId }));
      this.state.config.rootfs = { type: 'layers', diff_ids: this.state.layers.map((l) => l.diffId) };
      const entry = recHistory[recHistory.length - 1];
      if (entry) (this.state.config.history ??= []).push({ ...entry });
      sh.stats.cached++;
      sh.emit({ type: 'step-start', id, stage: this.label, name, time: Date.now() });
      sh.emit({ type: 'step-done', id, cached: true, durationMs: 0, time: Date.now() });
      this.key = sha(`${key}\n${stateChainId(this.state) ?? ''}`);
      return;
    }
    const t0 = Date.now();
    sh.emit({ type: 'step-start', id, stage: this.label, name, time: t0 });
    this.prefetchCopySources(ins);
    const rt = sh.runtime;
    const snap = await rt.snapshotter();
    const parent = await this.materialize(this.state);
    const active = `step-${randomBytes(8).toString('hex')}`;
    const fresh = opts.freshDest !== undefined && parent !== undefined ? await snap.prepareFresh?.(active, parent, opts.freshDest) : undefined;
    const rootfs = fresh ?? (await snap.prepare(active, parent));
    let committed = false;
    try {
      await work(rootfs.path, (stream, chunk) => sh.emit({ type: 'step-log', id, stream, data: chunk.toString(), time: Date.now() }));
      const { root, changes: raw, xattrs } = await snap.changes(active);
      const changes = await this.pruneUnchangedDirs(snap, active, parent, root, raw);
      const now = process.env.SOURCE_DATE_EPOCH ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000).toISOString() : new Date().toISOString();
      if (changes.length === 0) {
        addHistory(this.state, history, true);
        this.state.config.history!.at(-1)!.created = now;
      } else {
        const layerOpts = {
          root,
          changes,
          compression: sh.opts.compression?.compression ?? 'gzip',
          level: sh.opts.compression?.level,
          oci: sh.opts.ociMediaTypes !== false,
          sourceDateEpoch: process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : undefined,
          ...(xattrs ? { xattrs } : {}),
        } as const;
        // A small layer is compressed in the background while the next steps run: the snapshot
        // needs only its diffId. Its descriptor is a placeholder until settled (see BuildShared).
        const layer = rt.writeLayerDeferred ? await rt.writeLayerDeferred(rt.store, layerOpts, DEFERRED_LAYER_MAX) : await rt.writeLayer(rt.store, layerOpts);
        let descriptor: Descriptor;
        if (layer.descriptor instanceof Promise) {
          sh.deferLayer(layer.diffId, layer.descriptor);
          descriptor = { mediaType: layerMediaType(layerOpts.compression, layerOpts.oci), digest: PENDING_DIGEST, size: -1 };
        } else descriptor = layer.descriptor;
        const ref = { descriptor, diffId: layer.diffId };
        pushLayer(this.state, ref);
        addHistory(this.state, history, false);
        this.state.config.history!.at(-1)!.created = now;
        const newId = stateChainId(this.state)!;
        await rootfs.release();
        if (await snap.exists(newId)) {
          await snap.remove(active);
        } else {
          try {
            await snap.commit(active, newId);
          } catch (err) {
            // Another stage or kiln process committed the same tree first: use theirs.
            if (!(await snap.exists(newId))) throw err;
            await snap.remove(active);
          }
        }
        committed = true;
      }
    } catch (err) {
      sh.emit({ type: 'step-done', id, cached: false, durationMs: Date.now() - t0, error: (err as Error).message, time: Date.now() });
      // Any failure of a step points at its instruction (the CLI prints the excerpt).
      if (err instanceof KilnError && !(err instanceof DockerfileError)) {
        (err as KilnError & { dockerfile?: unknown }).dockerfile ??= { file: sh.def.file, range: ins.range };
      }
      throw err;
    } finally {
      if (!committed) {
        await rootfs.release().catch(() => undefined);
        await snap.remove(active).catch(() => undefined);
      }
    }
    void opts;
    // The record holds real descriptors: written once this state's deferred layers are stored.
    const record = cloneState(this.state);
    sh.background(sh.settleLayers(record).then(() => sh.cache.put({ key, parts, state: record })));
    sh.emit({ type: 'step-done', id, cached: false, durationMs: Date.now() - t0, time: Date.now() });
    this.key = sha(`${key}\n${stateChainId(this.state) ?? ''}`);
  }
}

/** `extra` entries replace same-named ones in `env`. */
function mergeEnv(env: string[], extra: string[]): string[] {
  let out = env;
  for (const e of extra) {
    const eq = e.indexOf('=');
    out = envSet(out, e.slice(0, eq), e.slice(eq + 1));
  }
  return out;
}

/** EXPOSE value → "port/proto" with the protocol lower-cased (tcp by default). */
function normalizePort(word: string, where: { file: string; range: SourceRange; instruction: string }): string {
  const m = /^(\d+(?:-\d+)?)(?:\/([a-zA-Z]+))?$/.exec(word.trim());
  if (!m) throw new DockerfileError(`invalid containerPort: ${word}`, where);
  return `${m[1]}/${(m[2] ?? 'tcp').toLowerCase()}`;
}

/** mkdir -p inside `rootfs` (following links inside it); created directories get uid:gid. */
async function mkdirAs(rootfs: string, dir: string, uid: number, gid: number): Promise<void> {
  const parts = dir.split('/').filter(Boolean);
  let cur = '';
  for (const p of parts) {
    cur = `${cur}/${p}`;
    const host = await resolveInRoot(rootfs, cur, true);
    try {
      await lstat(host);
    } catch {
      await mkdir(host, { recursive: true });
      await fsChown(host, uid, gid);
    }
  }
}
