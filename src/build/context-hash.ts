import { createHash } from 'node:crypto';
import { type Stats, createReadStream, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite } from './cache-store.js';
import { Semaphore } from './semaphore.js';
import { type IncludeFilter, expandSource } from './copy-files.js';

const hashOps = new Semaphore(32);

/** Bumped when the on-disk index layout changes (old files are then ignored, not misread). */
const INDEX_VERSION = 2;
/** How many whole-selection signatures a context keeps (recent builds, several COPY steps each). */
const MEMO_LIMIT = 64;

export interface SelectionDigest {
  digest: string;
  /**
   * Relative path → entry digest, when this build hashed the selection file
   * by file. Absent when the whole selection was recognised unchanged; the
   * map is then read back with {@link ContextHasher.filesOf} (for --explain).
   */
  files?: Record<string, string>;
}

/** Identity of a file's content as far as the index trusts it: size, mtime, ctime, inode. */
function statSig(st: Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
}

const sha256hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Content digests of COPY/ADD selections from the build context, with two
 * levels of memory, both trusting (size, mtime, ctime, inode) as git does:
 *
 * - a whole-selection memo: the walk's metadata (names, types, modes, link
 *   targets, each file's signature) hashed into one key → the selection
 *   digest. A warm rebuild stats every file but reads nothing else: no file,
 *   no per-file index.
 * - a per-file index keyed by path, consulted only when the memo misses, so
 *   that one changed file costs one read. It is saved at the end of the build
 *   only when a file was (re)hashed. On disk one flat JSON array
 *   [path, sig, digest, …]; in memory path → "sig digest" (digest last).
 *
 * The per-file digests of a selection (for --explain) are kept once per
 * selection digest under cache/selections/, not in every record and trace.
 */
export class ContextHasher {
  private index: Map<string, string> | undefined;
  private loading: Promise<Map<string, string>> | undefined;
  private dirty = false;
  private memo: Promise<Map<string, string>> | undefined;
  private memoDirty = false;
  /** Files met by this build's walks, and the directories walked whole (for pruning on save). */
  private readonly seen = new Set<string>();
  private readonly walkedDirs = new Set<string>();
  private readonly indexPath: string;
  private readonly legacyIndexPath: string;
  private readonly memoPath: string;
  private readonly selectionsDir: string;

  constructor(cacheDir: string, private readonly contextDir: string) {
    const id = sha256hex(contextDir).slice(0, 32);
    this.indexPath = join(cacheDir, 'context-index', `${id}.v${INDEX_VERSION}.json`);
    this.legacyIndexPath = join(cacheDir, 'context-index', `${id}.json`);
    this.memoPath = join(cacheDir, 'context-index', `${id}.selections.json`);
    this.selectionsDir = join(cacheDir, 'selections');
  }

  private load(): Promise<Map<string, string>> {
    this.loading ??= (async () => {
      const index = new Map<string, string>();
      try {
        const flat = JSON.parse(await readFile(this.indexPath, 'utf8')) as unknown;
        if (Array.isArray(flat)) {
          for (let i = 0; i + 2 < flat.length; i += 3) {
            const [path, sig, digest] = [flat[i], flat[i + 1], flat[i + 2]];
            if (typeof path === 'string' && typeof sig === 'string' && typeof digest === 'string' && digest.length === 64) {
              index.set(path, `${sig} ${digest}`);
            }
          }
        }
      } catch {
        // Missing or unreadable index: everything is hashed afresh.
      }
      this.index = index;
      return index;
    })();
    return this.loading;
  }

  /** Whole-selection memo: metadata key → selection digest, oldest first. */
  private loadMemo(): Promise<Map<string, string>> {
    this.memo ??= (async () => {
      const memo = new Map<string, string>();
      try {
        const obj = JSON.parse(await readFile(this.memoPath, 'utf8')) as unknown;
        if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
          for (const [k, v] of Object.entries(obj)) if (typeof v === 'string' && /^sha256:[0-9a-f]{64}$/.test(v)) memo.set(k, v);
        }
      } catch {
        // Missing or unreadable: every selection is checked file by file.
      }
      return memo;
    })();
    return this.memo;
  }

  async save(): Promise<void> {
    if (this.memoDirty && this.memo) {
      const memo = await this.memo;
      const evicted: string[] = [];
      while (memo.size > MEMO_LIMIT) {
        const [k, v] = memo.entries().next().value as [string, string];
        memo.delete(k);
        evicted.push(v);
      }
      await atomicWrite(this.memoPath, JSON.stringify(Object.fromEntries(memo)));
      // A selection's per-file list goes when no remembered selection of this context has its digest.
      const kept = new Set(memo.values());
      for (const d of new Set(evicted)) if (!kept.has(d)) await rm(this.selectionPath(d), { force: true }).catch(() => undefined);
      this.memoDirty = false;
    }
    if (!this.dirty || !this.index) return;
    // Entries under a directory walked whole that the walk did not meet are
    // deleted (or now ignored) files: drop them so the index does not grow
    // with churn. Entries elsewhere belong to other selections and stay.
    const roots = [...this.walkedDirs].map((d) => (d.endsWith('/') ? d : `${d}/`));
    const flat: string[] = [];
    for (const [path, v] of this.index) {
      if (!this.seen.has(path) && roots.some((r) => path.startsWith(r))) continue;
      flat.push(path, v.slice(0, -65), v.slice(-64));
    }
    await atomicWrite(this.indexPath, JSON.stringify(flat));
    await rm(this.legacyIndexPath, { force: true }).catch(() => undefined);
    this.dirty = false;
  }

  private selectionPath(digest: string): string {
    return join(this.selectionsDir, `${digest.replace(/^sha256:/, '')}.json`);
  }

  /** The per-file digests of a selection hashed by an earlier (or this) build; undefined when not kept. */
  async filesOf(digest: string): Promise<Record<string, string> | undefined> {
    try {
      const files = JSON.parse(await readFile(this.selectionPath(digest), 'utf8')) as unknown;
      return files && typeof files === 'object' && !Array.isArray(files) ? (files as Record<string, string>) : undefined;
    } catch {
      return undefined;
    }
  }

  private async fileDigest(host: string, sig: string, size: number): Promise<string> {
    const index = await this.load();
    const h = createHash('sha256');
    // A small file is read inline: a stream per file costs more than the bytes (20k-file contexts).
    if (size <= 128 * 1024) h.update(readFileSync(host));
    else for await (const chunk of createReadStream(host)) h.update(chunk as Buffer);
    const digest = h.digest('hex');
    index.set(host, `${sig} ${digest}`);
    this.dirty = true;
    return digest;
  }

  /** Digest of exactly what `sources` select under `srcRoot` (names, types, modes, link targets, contents). */
  async hashSelection(srcRoot: string, sources: string[], include?: IncludeFilter): Promise<SelectionDigest> {
    const memoLoaded = this.loadMemo();
    // Metadata walk is synchronous (one lstat per entry without a promise per
    // call); entries keep only the signature string, not the Stats object, so
    // a 20k-file walk leaves little for the GC.
    const entries: WalkEntry[] = [];
    const dirs: string[] = [];
    for (const s of sources) {
      const matches = await expandSource({ srcRoot, include }, s);
      entries.push({ line: `source ${s} ${matches.map((m) => m.rel).join(' ')}` });
      for (const m of matches) {
        let st: Stats;
        try {
          st = statSync(m.host);
        } catch {
          st = lstatSync(m.host);
        }
        walkSync(m.host, m.rel.replace(/(.)\/+$/, '$1'), st, include, entries, true);
        if (st.isDirectory()) dirs.push(m.host);
      }
    }
    const meta = createHash('sha256').update(`${srcRoot}\0`);
    meta.update(entries.map((e) => ('line' in e ? e.line : `f ${e.rel} ${e.mode} ${e.sig}`)).join('\n'));
    const metaKey = meta.digest('hex');
    const memo = await memoLoaded;
    const known = memo.get(metaKey);
    if (known !== undefined) {
      // Unchanged since a build that hashed it: refresh its place in the memo only.
      if ([...memo.keys()].at(-1) !== metaKey) {
        memo.delete(metaKey);
        memo.set(metaKey, known);
        this.memoDirty = true;
      }
      return { digest: known };
    }

    // Something changed (or never seen): per-file index, reading only files whose signature moved.
    for (const d of dirs) this.walkedDirs.add(d);
    const index = await this.load();
    const pending: Array<Promise<void>> = [];
    for (const e of entries) {
      if ('line' in e) continue;
      this.seen.add(e.host);
      const hit = index.get(e.host);
      if (hit !== undefined && hit.length === e.sig.length + 65 && hit.startsWith(e.sig)) e.digest = hit.slice(-64);
      else pending.push(hashOps.run(async () => void (e.digest = await this.fileDigest(e.host, e.sig, e.size))));
    }
    await Promise.all(pending);
    const files: Record<string, string> = {};
    const lines: string[] = [];
    for (const e of entries) {
      if ('line' in e) {
        lines.push(e.line);
        if (e.link) files[e.link[0]] = e.link[1];
        continue;
      }
      const d = e.digest!;
      files[e.rel] = d;
      lines.push(`f ${e.rel} ${e.mode} ${d}`);
    }
    const digest = `sha256:${sha256hex(lines.join('\n'))}`;
    const listPath = this.selectionPath(digest);
    if (!existsSync(listPath)) await atomicWrite(listPath, JSON.stringify(files));
    memo.set(metaKey, digest);
    this.memoDirty = true;
    return { digest, files };
  }
}

type WalkEntry = { line: string; link?: [string, string] } | { rel: string; host: string; sig: string; size: number; mode: string; digest?: string };

/** Pre-order, name-sorted walk; regular files are returned for hashing, the rest as lines. */
function walkSync(host: string, rel: string, st: Stats, include: IncludeFilter | undefined, out: WalkEntry[], top: boolean): void {
  const mode = (st.mode & 0o7777).toString(8);
  if (st.isDirectory()) {
    out.push({ line: `d ${rel} ${mode}` });
    const base = host.endsWith('/') ? host : `${host}/`;
    for (const n of readdirSync(host).sort()) {
      const childRel = rel === '.' ? n : `${rel}/${n}`;
      const child = base + n;
      const cst = lstatSync(child);
      if (include && !include(childRel, cst.isDirectory())) continue;
      walkSync(child, childRel, cst, include, out, false);
    }
    return;
  }
  if (st.isSymbolicLink() && !top) {
    const target = readlinkSync(host);
    out.push({ line: `l ${rel} ${target}`, link: [rel, `l:${target}`] });
    return;
  }
  if (st.isFile()) {
    out.push({ rel, host, sig: statSig(st), size: st.size, mode, digest: undefined });
    return;
  }
  out.push({ line: `o ${rel} ${mode}` });
}
