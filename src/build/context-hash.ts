import { createHash } from 'node:crypto';
import { type Stats, createReadStream, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { atomicWrite } from './cache-store.js';
import { Semaphore } from './semaphore.js';
import { type IncludeFilter, expandSource } from './copy-files.js';

const hashOps = new Semaphore(32);

interface IndexEntry {
  /** size:mtimeMs:ctimeMs:ino */
  stat: string;
  digest: string;
}

export interface SelectionDigest {
  digest: string;
  /** Relative path → entry digest (for --explain). */
  files: Record<string, string>;
}

/**
 * Content digests of COPY/ADD selections from the build context. A
 * persistent index keyed by path and (size, mtime, ctime, inode) avoids
 * rehashing unchanged files; it is saved at the end of the build.
 */
export class ContextHasher {
  private index: Map<string, IndexEntry> | undefined;
  private dirty = false;
  private readonly indexPath: string;

  constructor(cacheDir: string, private readonly contextDir: string) {
    const id = createHash('sha256').update(contextDir).digest('hex').slice(0, 32);
    this.indexPath = join(cacheDir, 'context-index', `${id}.json`);
  }

  private async load(): Promise<Map<string, IndexEntry>> {
    if (!this.index) {
      try {
        this.index = new Map(Object.entries(JSON.parse(await readFile(this.indexPath, 'utf8')) as Record<string, IndexEntry>));
      } catch {
        this.index = new Map();
      }
    }
    return this.index;
  }

  async save(): Promise<void> {
    if (!this.dirty || !this.index) return;
    await atomicWrite(this.indexPath, JSON.stringify(Object.fromEntries(this.index)));
    this.dirty = false;
  }

  private async fileDigest(host: string, st: import('node:fs').Stats): Promise<string> {
    const index = await this.load();
    const sig = `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
    const hit = index.get(host);
    if (hit && hit.stat === sig) return hit.digest;
    const h = createHash('sha256');
    for await (const chunk of createReadStream(host)) h.update(chunk as Buffer);
    const digest = h.digest('hex');
    index.set(host, { stat: sig, digest });
    this.dirty = true;
    return digest;
  }

  /** Digest of exactly what `sources` select under `srcRoot` (names, types, modes, link targets, contents). */
  async hashSelection(srcRoot: string, sources: string[], include?: IncludeFilter): Promise<SelectionDigest> {
    const index = await this.load();
    const files: Record<string, string> = {};
    const lines: string[] = [];
    // Metadata walk is synchronous (one lstat per entry without a promise per
    // call: a warm 10k-file context costs tens of ms); only files whose
    // (size, mtime, ctime, inode) changed are read, concurrently.
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
      }
    }
    const pending: Array<Promise<void>> = [];
    const digests = new Map<string, string>();
    for (const e of entries) {
      if ('line' in e) continue;
      const sig = `${e.st.size}:${e.st.mtimeMs}:${e.st.ctimeMs}:${e.st.ino}`;
      const hit = index.get(e.host);
      if (hit && hit.stat === sig) digests.set(e.host, hit.digest);
      else pending.push(hashOps.run(async () => void digests.set(e.host, await this.fileDigest(e.host, e.st))));
    }
    await Promise.all(pending);
    for (const e of entries) {
      if ('line' in e) {
        lines.push(e.line);
        if (e.link) files[e.link[0]] = e.link[1];
        continue;
      }
      const d = digests.get(e.host)!;
      files[e.rel] = d;
      lines.push(`f ${e.rel} ${e.mode} ${d}`);
    }
    const digest = `sha256:${createHash('sha256').update(lines.join('\n')).digest('hex')}`;
    return { digest, files };
  }
}

type WalkEntry = { line: string; link?: [string, string] } | { rel: string; host: string; st: Stats; mode: string };

/** Pre-order, name-sorted walk; regular files are returned for hashing, the rest as lines. */
function walkSync(host: string, rel: string, st: Stats, include: IncludeFilter | undefined, out: WalkEntry[], top: boolean): void {
  const mode = (st.mode & 0o7777).toString(8);
  if (st.isDirectory()) {
    out.push({ line: `d ${rel} ${mode}` });
    for (const n of readdirSync(host).sort()) {
      const childRel = rel === '.' ? n : `${rel}/${n}`;
      const child = posix.join(host, n);
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
    out.push({ rel, host, st, mode });
    return;
  }
  out.push({ line: `o ${rel} ${mode}` });
}
