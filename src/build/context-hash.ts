import { createHash } from 'node:crypto';
import { type Stats, createReadStream, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite } from './cache-store.js';
import { Semaphore } from './semaphore.js';
import { type IncludeFilter, expandSource } from './copy-files.js';

const hashOps = new Semaphore(32);

/** Bumped when the on-disk index layout changes (old files are then ignored, not misread). */
const INDEX_VERSION = 2;

export interface SelectionDigest {
  digest: string;
  /** Relative path → entry digest (for --explain). */
  files: Record<string, string>;
}

/** Identity of a file's content as far as the index trusts it: size, mtime, ctime, inode. */
function statSig(st: Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
}

/**
 * Content digests of COPY/ADD selections from the build context. A
 * persistent index keyed by path and (size, mtime, ctime, inode) avoids
 * rehashing unchanged files; it is saved at the end of the build only when a
 * file was (re)hashed. On disk it is one flat JSON array
 * [path, sig, digest, path, sig, digest, …] (cheap to parse, no per-entry
 * objects); in memory path → "sig digest" with the 64-hex digest last.
 */
export class ContextHasher {
  private index: Map<string, string> | undefined;
  private loading: Promise<Map<string, string>> | undefined;
  private dirty = false;
  /** Files met by this build's walks, and the directories walked whole (for pruning on save). */
  private readonly seen = new Set<string>();
  private readonly walkedDirs = new Set<string>();
  private readonly indexPath: string;
  private readonly legacyIndexPath: string;

  constructor(cacheDir: string, private readonly contextDir: string) {
    const id = createHash('sha256').update(contextDir).digest('hex').slice(0, 32);
    this.indexPath = join(cacheDir, 'context-index', `${id}.v${INDEX_VERSION}.json`);
    this.legacyIndexPath = join(cacheDir, 'context-index', `${id}.json`);
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

  async save(): Promise<void> {
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

  private async fileDigest(host: string, sig: string): Promise<string> {
    const index = await this.load();
    const h = createHash('sha256');
    for await (const chunk of createReadStream(host)) h.update(chunk as Buffer);
    const digest = h.digest('hex');
    index.set(host, `${sig} ${digest}`);
    this.dirty = true;
    return digest;
  }

  /** Digest of exactly what `sources` select under `srcRoot` (names, types, modes, link targets, contents). */
  async hashSelection(srcRoot: string, sources: string[], include?: IncludeFilter): Promise<SelectionDigest> {
    // The index file is read while the context is walked.
    const indexLoaded = this.load();
    const files: Record<string, string> = {};
    const lines: string[] = [];
    // Metadata walk is synchronous (one lstat per entry without a promise per
    // call); entries keep only the signature string, not the Stats object, so
    // a 20k-file walk leaves little for the GC. Only files whose signature
    // changed are read, concurrently.
    const entries: WalkEntry[] = [];
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
        if (st.isDirectory()) this.walkedDirs.add(m.host);
      }
    }
    const index = await indexLoaded;
    const pending: Array<Promise<void>> = [];
    for (const e of entries) {
      if ('line' in e) continue;
      this.seen.add(e.host);
      const hit = index.get(e.host);
      if (hit !== undefined && hit.length === e.sig.length + 65 && hit.startsWith(e.sig)) e.digest = hit.slice(-64);
      else pending.push(hashOps.run(async () => void (e.digest = await this.fileDigest(e.host, e.sig))));
    }
    await Promise.all(pending);
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
    const digest = `sha256:${createHash('sha256').update(lines.join('\n')).digest('hex')}`;
    return { digest, files };
  }
}

type WalkEntry = { line: string; link?: [string, string] } | { rel: string; host: string; sig: string; mode: string; digest?: string };

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
    out.push({ rel, host, sig: statSig(st), mode, digest: undefined });
    return;
  }
  out.push({ line: `o ${rel} ${mode}` });
}
