import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, posix, resolve as resolvePath } from 'node:path';
import { promisify } from 'node:util';
import { KilnError, UsageError } from '../errors.js';
import { isInside, resolveInRoot } from '../util/safe-path.js';
import { lockFile, type HeldLock } from './cache-lock.js';
import type { MountSpec } from './types.js';

const execFileP = promisify(execFile);

/**
 * RUN --mount, as plain data (the build engine maps the Dockerfile's typed
 * flags onto this; sandbox/ does not import dockerfile/). `fromRoot` is the
 * host directory the mount's source is relative to: the build context, or the
 * rootfs of the stage/image named by `from=`. Sources always resolve inside
 * their own root.
 */
export type RunMountInput =
  | {
      type: 'cache';
      target: string;
      /** Default: the target. */
      id?: string;
      sharing?: 'shared' | 'private' | 'locked';
      readonly?: boolean;
      /** Applied when the cache directory is created. Defaults 0o755, 0, 0. */
      mode?: number;
      uid?: number;
      gid?: number;
      /** Seeds a new cache with this directory of fromRoot (BuildKit's from/source). */
      fromRoot?: string;
      source?: string;
    }
  | { type: 'secret'; id?: string; target?: string; env?: string; required?: boolean; mode?: number; uid?: number; gid?: number }
  | { type: 'bind'; target: string; fromRoot: string; source?: string; readwrite?: boolean }
  | { type: 'tmpfs'; target: string; sizeBytes?: number }
  | { type: 'ssh'; id?: string; target?: string; required?: boolean; mode?: number; uid?: number; gid?: number };

/** `--secret id=…,src=…|env=…` as given to the build. */
export interface SecretSource {
  id: string;
  /** A file on the host. */
  src?: string;
  /** A variable of the build's environment. */
  env?: string;
}

export interface RunMountContext {
  /** $KILN_ROOT: caches live in $KILN_ROOT/cache-mounts between builds. */
  kilnRoot: string;
  secrets?: SecretSource[];
  /** `--ssh id=socket` (default: "default" → $SSH_AUTH_SOCK). */
  ssh?: Record<string, string>;
  /** The environment `--secret env=` reads (default process.env). */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export interface RunMounts {
  mounts: MountSpec[];
  /** "KEY=value" to add to the step's environment (secret env=, SSH_AUTH_SOCK). Never log these. */
  env: string[];
  /** Unlock caches and delete rw-bind copies. Idempotent; call after the step. */
  release(): Promise<void>;
}

/** Turn RUN --mount inputs into executor mounts; holds cache locks until release(). */
export async function prepareRunMounts(inputs: RunMountInput[], ctx: RunMountContext): Promise<RunMounts> {
  const mounts: MountSpec[] = [];
  const env: string[] = [];
  const locks: HeldLock[] = [];
  const temps: string[] = [];
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await Promise.all(locks.map((l) => l.release()));
    await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
  };
  try {
    let sshN = 0;
    for (const m of inputs) {
      switch (m.type) {
        case 'tmpfs':
          mounts.push(m.sizeBytes === undefined ? { type: 'tmpfs', target: m.target } : { type: 'tmpfs', target: m.target, sizeBytes: m.sizeBytes });
          break;
        case 'bind': {
          const source = await resolveSource(m.fromRoot, m.source ?? '/', 'bind');
          if (m.readwrite) {
            // Writes are discarded: the step gets a private copy.
            await mkdir(join(ctx.kilnRoot, 'tmp'), { recursive: true, mode: 0o700 });
            const dir = await mkdtemp(join(ctx.kilnRoot, 'tmp', 'bind-'));
            temps.push(dir);
            const copy = join(dir, 'src');
            await execFileP('cp', ['-a', '--', source, copy]);
            mounts.push({ type: 'bind', source: copy, target: m.target, readonly: false });
          } else {
            mounts.push({ type: 'bind', source, target: m.target, readonly: true });
          }
          break;
        }
        case 'cache': {
          const { dir, lock } = await cacheDir(m, ctx);
          if (lock) locks.push(lock);
          mounts.push({ type: 'bind', source: dir, target: m.target, readonly: m.readonly ?? false });
          break;
        }
        case 'secret': {
          const id = m.id ?? (m.target ? posix.basename(m.target) : undefined);
          if (!id) throw new UsageError('Invalid RUN --mount=type=secret: it needs an id or a target');
          const content = await secretValue(id, ctx);
          if (content === undefined) {
            if (m.required) {
              throw new KilnError('SECRET_NOT_FOUND', `secret ${id}: not found`, {
                hint: `Pass it to the build: --secret id=${id},src=FILE or --secret id=${id},env=VARIABLE`,
              });
            }
            break;
          }
          if (m.env) {
            if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(m.env)) throw new UsageError(`Invalid RUN --mount=type=secret,env="${m.env}": not a variable name`);
            env.push(`${m.env}=${content.toString('utf8')}`);
          }
          if (m.target || !m.env) {
            mounts.push({ type: 'file', target: m.target ?? `/run/secrets/${id}`, content, mode: m.mode ?? 0o400, uid: m.uid ?? 0, gid: m.gid ?? 0 });
          }
          break;
        }
        case 'ssh': {
          const id = m.id ?? 'default';
          const sock = ctx.ssh?.[id];
          if (!sock) {
            if (m.required) {
              throw new KilnError('SSH_NOT_FOUND', `no SSH key "${id}" forwarded from the client`, {
                hint: id === 'default' ? 'Pass --ssh default (with $SSH_AUTH_SOCK set) to the build.' : `Pass --ssh ${id}=SOCKET to the build.`,
              });
            }
            break;
          }
          const st = await stat(sock).catch(() => undefined);
          if (!st?.isSocket()) throw new KilnError('SSH_NOT_FOUND', `Cannot forward SSH agent "${id}": "${sock}" is not a socket`);
          const target = m.target ?? `/run/buildkit/ssh_agent.${sshN++}`;
          mounts.push({ type: 'bind', source: sock, target, readonly: false });
          env.push(`SSH_AUTH_SOCK=${target}`);
          break;
        }
      }
    }
    return { mounts, env, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** `source` inside `root` (symlinks and ".." cannot leave it); must exist. */
async function resolveSource(root: string, source: string, what: string): Promise<string> {
  const host = await resolveInRoot(root, posix.normalize('/' + source));
  if (!isInside(root, host)) throw new KilnError('MOUNT_SOURCE', `Cannot mount ${what} source "${source}": it resolves outside its root`);
  try {
    await lstat(host);
  } catch {
    throw new KilnError('MOUNT_SOURCE', `Cannot mount ${what} source "${source}": not found`, { hint: 'The path is relative to the build context (or to the stage/image named by from=).' });
  }
  return host;
}

async function secretValue(id: string, ctx: RunMountContext): Promise<Buffer | undefined> {
  const s = ctx.secrets?.find((x) => x.id === id);
  if (!s) return undefined;
  if (s.src !== undefined) {
    try {
      return await readFile(s.src);
    } catch (err) {
      throw new KilnError('SECRET_READ', `Cannot read secret "${id}" from "${s.src}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const name = s.env ?? id;
  const v = (ctx.env ?? process.env)[name];
  return v === undefined ? undefined : Buffer.from(v);
}

/** A cache mount a step is about to use, as told to a CacheMountObserver. */
export interface CacheMountUse {
  /** The mount's id (default: its target). */
  id: string;
  /** Host directory holding its contents. */
  dir: string;
  /** The flock file guarding `dir` (take it 'shared' to read the contents later). */
  lockPath: string;
  /** `dir` is empty (new, or left empty) and the mount has no from=: an observer may fill it. */
  fresh: boolean;
}

/** Sees every cache mount prepared under one $KILN_ROOT (build cache export/import of mount contents). */
export type CacheMountObserver = (use: CacheMountUse) => Promise<void>;

const observers = new Map<string, Set<CacheMountObserver>>();

/**
 * Call `observer` for each cache mount prepareRunMounts sets up under
 * `kilnRoot`, with the mount's lock held and before the step runs. It may
 * fill a fresh directory; if it throws, the step fails. Returns the
 * unsubscribe function.
 */
export function observeCacheMounts(kilnRoot: string, observer: CacheMountObserver): () => void {
  const key = resolvePath(kilnRoot);
  let set = observers.get(key);
  if (!set) observers.set(key, (set = new Set()));
  set.add(observer);
  return () => {
    set.delete(observer);
    if (!set.size && observers.get(key) === set) observers.delete(key);
  };
}

/**
 * The directory of a cache mount under $KILN_ROOT/cache-mounts/<sha256(id)>.
 * shared: a shared flock (many steps at once); locked: an exclusive flock
 * (waits); private: the first instance nobody holds (a new one if all are busy).
 */
async function cacheDir(m: Extract<RunMountInput, { type: 'cache' }>, ctx: RunMountContext): Promise<{ dir: string; lock: HeldLock | undefined }> {
  const id = m.id ?? m.target;
  const key = createHash('sha256').update(id).digest('hex').slice(0, 32);
  const base = join(ctx.kilnRoot, 'cache-mounts');
  await mkdir(base, { recursive: true, mode: 0o700 });
  const sharing = m.sharing ?? 'shared';
  let instance = key;
  let lock: HeldLock | undefined;
  if (sharing === 'private') {
    for (let n = 0; ; n++) {
      instance = n === 0 ? key : `${key}-${n}`;
      const o: { wait: boolean; signal?: AbortSignal } = { wait: false };
      if (ctx.signal) o.signal = ctx.signal;
      lock = await lockFile(join(base, `${instance}.lock`), 'exclusive', o);
      if (lock) break;
    }
  } else {
    const o: { wait: boolean; signal?: AbortSignal } = { wait: true };
    if (ctx.signal) o.signal = ctx.signal;
    lock = await lockFile(join(base, `${instance}.lock`), sharing === 'locked' ? 'exclusive' : 'shared', o);
  }
  const dir = join(base, instance);
  try {
    await mkdir(dir, { mode: 0o755 });
    if (m.fromRoot !== undefined) {
      const src = await resolveSource(m.fromRoot, m.source ?? '/', 'cache');
      await execFileP('cp', ['-a', '--', src + '/.', dir]);
    }
    await chown(dir, m.uid ?? 0, m.gid ?? 0);
    await chmod(dir, m.mode ?? 0o755);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      await lock?.release();
      throw err;
    }
  }
  const watching = observers.get(resolvePath(ctx.kilnRoot));
  if (watching?.size) {
    try {
      for (const o of [...watching]) {
        const fresh = m.fromRoot === undefined && (await readdir(dir)).length === 0;
        await o({ id, dir, lockPath: join(base, `${instance}.lock`), fresh });
      }
    } catch (err) {
      await lock?.release();
      throw err;
    }
  }
  return { dir, lock };
}

/**
 * Parse one `--secret` value: `id=ID[,src=PATH|source=PATH][,env=VAR][,type=file|env]`
 * (docker buildx syntax). With neither src nor env: type=file reads the file
 * named ID, otherwise the variable named ID.
 */
export function parseSecretFlag(value: string): SecretSource {
  const out: Partial<SecretSource> & { type?: string } = {};
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const k = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const v = eq === -1 ? '' : part.slice(eq + 1);
    if (k === 'id') out.id = v;
    else if (k === 'src' || k === 'source') out.src = v;
    else if (k === 'env') out.env = v;
    else if (k === 'type') {
      if (v !== 'file' && v !== 'env') throw new UsageError(`Invalid --secret "${value}": type must be file or env`);
      out.type = v;
    } else throw new UsageError(`Invalid --secret "${value}": unknown key "${k}"`, { hint: 'Use --secret id=ID,src=PATH or --secret id=ID,env=VARIABLE' });
  }
  if (!out.id) {
    if (out.src) out.id = posix.basename(out.src);
    else if (out.env) out.id = out.env;
    else throw new UsageError(`Invalid --secret "${value}": it needs id=`);
  }
  if (out.type === 'env' && out.src !== undefined && out.env === undefined) {
    out.env = out.src;
    delete out.src;
  }
  if (out.src === undefined && out.env === undefined) {
    if (out.type === 'file') out.src = out.id;
    else out.env = out.id;
  }
  const r: SecretSource = { id: out.id };
  if (out.src !== undefined) r.src = out.src;
  if (out.env !== undefined) r.env = out.env;
  return r;
}

/** Parse `--ssh` values (`default`, `default=SOCKET`, `ID=SOCKET`) into id → agent socket. */
export function parseSshFlags(values: string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const id = eq === -1 ? v : v.slice(0, eq);
    const path = eq === -1 ? undefined : v.slice(eq + 1);
    if (!id) throw new UsageError(`Invalid --ssh "${v}": it needs an id`);
    const sock = path ?? env.SSH_AUTH_SOCK;
    if (!sock) {
      throw new UsageError(`Invalid --ssh "${v}": $SSH_AUTH_SOCK is not set`, { hint: 'Start an agent (eval "$(ssh-agent)"; ssh-add) or pass --ssh ID=SOCKET.' });
    }
    if (sock.includes(',')) throw new UsageError(`Invalid --ssh "${v}": kiln forwards one agent socket per id, not key files`);
    out[id] = sock;
  }
  return out;
}
