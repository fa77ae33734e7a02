import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { withFileLock } from '../content/file-lock.js';
import { KilnError, NotFoundError } from '../errors.js';
import type { SnapshotInfo, SnapshotterKind } from './types.js';

/**
 * On-disk layout shared by both snapshotters (one store per kind):
 *
 *   <dir>/<name(id)>/fs            committed snapshot: a layer diff (overlay) or a full tree (copy)
 *   <dir>/<name(id)>/meta.json     CommittedMeta, written before the atomic rename that publishes it
 *   <dir>/<name(id)>/flat          overlay only: merged view of the whole chain (deep chains)
 *   <dir>/.l/<link>                short symlink → ../<name(id)>/fs (keeps overlay options short)
 *   <dir>/.active/<hash(key)>/     active snapshot: meta.json + upper/work/merged (overlay) or fs (copy)
 *   <dir>/.tmp/<pid>-<rand>        work in progress; removed on failure, stale ones on start-up
 *   <dir>/.locks/<name>.lock       cross-process locks (content/file-lock)
 *
 * `name(id)` is the id itself when it is a plain token (chain ids "sha256:…" are), else "%" + sha256.
 */
export interface CommittedMeta {
  id: string;
  parent: string | null;
  kind: SnapshotterKind;
  /** Name under .l/ */
  link: string;
  /** Number of snapshots in the chain, this one included. */
  depth: number;
  created: string;
}

export interface ActiveMeta {
  key: string;
  parent: string | null;
  kind: SnapshotterKind;
  /** Owner process: "pid@host". */
  owner: string;
  created: string;
}

const PLAIN_ID = /^[A-Za-z0-9][A-Za-z0-9_.:+=@-]{0,127}$/;
const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');

export function snapshotDirName(id: string): string {
  if (!id) throw new KilnError('SNAPSHOT_BAD_ID', 'Cannot use an empty snapshot id');
  return PLAIN_ID.test(id) ? id : `%${sha256hex(id)}`;
}

function ownerAlive(owner: string): boolean {
  const [pidText, host] = owner.split('@');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0) return true;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const thisOwner = () => `${process.pid}@${hostname()}`;

export class SnapshotStore {
  private readonly metas = new Map<string, CommittedMeta>();
  /** Active snapshots this process created (only we remove them). */
  private readonly actives = new Map<string, ActiveMeta>();

  constructor(
    readonly dir: string,
    readonly kind: SnapshotterKind,
  ) {}

  get activeRoot(): string {
    return join(this.dir, '.active');
  }
  get tmpRoot(): string {
    return join(this.dir, '.tmp');
  }

  /** Create the layout and drop what crashed processes left behind (their temp dirs; active dirs via `dropActive`). */
  async init(dropActive: (key: string, dir: string) => Promise<void>): Promise<void> {
    await Promise.all(['.active', '.l', '.tmp', '.locks', '.empty'].map((d) => mkdir(join(this.dir, d), { recursive: true })));
    for (const name of await readdir(this.tmpRoot)) {
      const pid = Number(name.split('-')[0]);
      if (Number.isInteger(pid) && !ownerAlive(`${pid}@${hostname()}`)) await rm(join(this.tmpRoot, name), { recursive: true, force: true });
    }
    for (const name of await readdir(this.activeRoot)) {
      const dir = join(this.activeRoot, name);
      const meta = await readJson<ActiveMeta>(join(dir, 'meta.json'));
      if (meta && ownerAlive(meta.owner)) continue;
      await dropActive(meta?.key ?? name, dir);
    }
  }

  committedDir(id: string): string {
    return join(this.dir, snapshotDirName(id));
  }
  fsOf(id: string): string {
    return join(this.committedDir(id), 'fs');
  }
  activeDir(key: string): string {
    return join(this.activeRoot, sha256hex(`key:${key}`).slice(0, 20));
  }

  async readCommitted(id: string): Promise<CommittedMeta | undefined> {
    const cached = this.metas.get(id);
    if (cached) return cached;
    const meta = await readJson<CommittedMeta>(join(this.committedDir(id), 'meta.json'));
    if (!meta || meta.id !== id || meta.kind !== this.kind) return undefined;
    this.metas.set(id, meta);
    return meta;
  }

  async requireCommitted(id: string): Promise<CommittedMeta> {
    const meta = await this.readCommitted(id);
    if (!meta) throw new NotFoundError(`Cannot find committed ${this.kind} snapshot "${id}"`, { code: 'SNAPSHOT_NOT_FOUND' });
    return meta;
  }

  /** Committed metas from `id` down to the bottom of its chain. */
  async chain(id: string): Promise<CommittedMeta[]> {
    const out: CommittedMeta[] = [];
    let cur: string | null = id;
    while (cur !== null) {
      const meta: CommittedMeta = await this.requireCommitted(cur);
      out.push(meta);
      cur = meta.parent;
      if (out.length > 10_000) throw new KilnError('SNAPSHOT_CORRUPT', `Cannot read chain of snapshot "${id}": it loops`);
    }
    return out;
  }

  async readActive(key: string): Promise<ActiveMeta | undefined> {
    const mine = this.actives.get(key);
    if (mine) return mine;
    const meta = await readJson<ActiveMeta>(join(this.activeDir(key), 'meta.json'));
    return meta && meta.key === key ? meta : undefined;
  }

  async requireActive(key: string): Promise<ActiveMeta> {
    const meta = await this.readActive(key);
    if (!meta) throw new NotFoundError(`Cannot find active ${this.kind} snapshot "${key}"`, { code: 'SNAPSHOT_NOT_FOUND' });
    return meta;
  }

  /**
   * Make the active dir of `key` and write its meta.json (in parallel with `alongside(dir)`);
   * SNAPSHOT_EXISTS if a live process owns `key`. A stale one is dropped first.
   */
  async createActive(key: string, parent: string | undefined, dropStale: (dir: string) => Promise<void>, alongside?: (dir: string) => Promise<void>): Promise<string> {
    const dir = this.activeDir(key);
    try {
      await mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const old = await readJson<ActiveMeta>(join(dir, 'meta.json'));
      if (old && ownerAlive(old.owner)) {
        throw new KilnError('SNAPSHOT_EXISTS', `Cannot prepare snapshot "${key}": it is already active`, {
          hint: 'Commit or remove it first; keys of active snapshots must be unique.',
        });
      }
      await dropStale(dir);
      await mkdir(dir);
    }
    const meta: ActiveMeta = { key, parent: parent ?? null, kind: this.kind, owner: thisOwner(), created: new Date().toISOString() };
    try {
      await Promise.all([writeFile(join(dir, 'meta.json'), JSON.stringify(meta)), alongside?.(dir)]);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    this.actives.set(key, meta);
    return dir;
  }

  /** Forget the cached meta of `key` (call when its active dir goes away). */
  forgetActive(key: string): void {
    this.actives.delete(key);
  }

  async tmpDir(): Promise<string> {
    const dir = join(this.tmpRoot, `${process.pid}-${randomBytes(6).toString('hex')}`);
    await mkdir(dir);
    return dir;
  }

  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    // A live owner may hold it for a long extraction; dead owners are detected by pid.
    return withFileLock(join(this.dir, '.locks', `${snapshotDirName(name)}.lock`), fn, { timeoutMs: 60 * 60_000, staleMs: 24 * 3600_000 });
  }

  /**
   * Publish committed `id`: under its lock, unless it exists already, `build(tmp)` fills a temp
   * dir (it must leave `tmp/fs`), meta.json is written, and one rename makes it visible. Returns
   * false when `id` existed (nothing built). `build`'s temp dir is removed on failure.
   */
  async publish(id: string, parent: string | undefined, build: (tmp: string) => Promise<void>): Promise<boolean> {
    const parentMeta = parent === undefined ? undefined : await this.requireCommitted(parent);
    return this.withLock(id, async () => {
      if (await this.readCommitted(id)) return false;
      const tmp = await this.tmpDir();
      try {
        await build(tmp);
        const link = await this.ensureLink(id);
        const meta: CommittedMeta = {
          id,
          parent: parent ?? null,
          kind: this.kind,
          link,
          depth: (parentMeta?.depth ?? 0) + 1,
          created: new Date().toISOString(),
        };
        await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
        try {
          await rename(tmp, this.committedDir(id));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          // Someone published it meanwhile (a lock broken as stale): theirs stands.
          if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await this.readCommitted(id))) {
            await rm(tmp, { recursive: true, force: true });
            return false;
          }
          throw err;
        }
        return true;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    });
  }

  /** Short name under .l/ pointing at ../<name(id)>/fs. */
  private async ensureLink(id: string): Promise<string> {
    const target = `../${snapshotDirName(id)}/fs`;
    const hash = sha256hex(`link:${id}`);
    for (const len of [10, 16, 64]) {
      const name = hash.slice(0, len);
      const path = join(this.dir, '.l', name);
      try {
        await symlink(target, path);
        return name;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if ((await readlink(path)) === target) return name;
      }
    }
    throw new KilnError('SNAPSHOT_CORRUPT', `Cannot link snapshot "${id}": link names collide`);
  }

  /** Remove committed `id` (its link, then its dir through an atomic rename into .tmp). */
  async dropCommitted(id: string): Promise<void> {
    const meta = await this.requireCommitted(id);
    await this.withLock(id, async () => {
      const tmp = join(this.tmpRoot, `${process.pid}-rm-${randomBytes(6).toString('hex')}`);
      await rename(this.committedDir(id), tmp);
      this.metas.delete(id);
      await rm(join(this.dir, '.l', meta.link), { force: true });
      await rm(join(this.dir, '.l', `${meta.link}.f`), { force: true });
      await rm(tmp, { recursive: true, force: true });
    });
  }

  async listCommitted(): Promise<CommittedMeta[]> {
    const out: CommittedMeta[] = [];
    for (const name of await readdir(this.dir)) {
      if (name.startsWith('.')) continue;
      const meta = await readJson<CommittedMeta>(join(this.dir, name, 'meta.json'));
      if (meta && meta.kind === this.kind) out.push(meta);
    }
    return out;
  }

  /** Committed snapshots as Snapshotter.list() reports them. */
  async infos(): Promise<SnapshotInfo[]> {
    return (await this.listCommitted()).map((m) => ({ id: m.id, parent: m.parent, kind: m.kind, created: m.created }));
  }

  /** Parents of the active snapshots (what a prune must keep). */
  async activeParents(): Promise<string[]> {
    return (await this.listActive()).flatMap((m) => (m.parent === null ? [] : [m.parent]));
  }

  /** Bytes committed `id` takes on disk (its fs, flat copy and meta; hard links counted once). */
  async usage(id: string): Promise<number> {
    await this.requireCommitted(id);
    const seen = new Set<string>();
    let total = 0;
    const walk = async (path: string): Promise<void> => {
      let st;
      try {
        st = await lstat(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      const ino = `${st.dev}:${st.ino}`;
      if (seen.has(ino)) return;
      seen.add(ino);
      total += st.blocks * 512;
      if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
    };
    await walk(this.committedDir(id));
    return total;
  }

  async listActive(): Promise<ActiveMeta[]> {
    const out: ActiveMeta[] = [];
    for (const name of await readdir(this.activeRoot)) {
      const meta = await readJson<ActiveMeta>(join(this.activeRoot, name, 'meta.json'));
      if (meta) out.push(meta);
    }
    return out;
  }

  /** SNAPSHOT_IN_USE when a committed or active snapshot has `id` as parent. */
  async assertUnused(id: string): Promise<void> {
    const users = [...(await this.listCommitted()).filter((m) => m.parent === id).map((m) => m.id), ...(await this.listActive()).filter((m) => m.parent === id).map((m) => m.key)];
    if (users.length) {
      throw new KilnError('SNAPSHOT_IN_USE', `Cannot remove snapshot "${id}": ${users.length} snapshot(s) build on it ("${users[0]}"…)`, {
        hint: 'Remove the snapshots built on it first.',
      });
    }
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}
