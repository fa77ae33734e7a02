import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, readlink, stat } from 'node:fs/promises';
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
    const files: Record<string, string> = {};
    const lines: string[] = [];
    for (const s of sources) {
      const matches = await expandSource({ srcRoot, include }, s);
      lines.push(`source ${s} ${matches.map((m) => m.rel).join(' ')}`);
      for (const m of matches) {
        const st = await stat(m.host).catch(() => lstat(m.host));
        await this.walk(m.host, m.rel, st, include, files, lines, true);
      }
    }
    const digest = `sha256:${createHash('sha256').update(lines.join('\n')).digest('hex')}`;
    return { digest, files };
  }

  private async walk(host: string, rel: string, st: import('node:fs').Stats, include: IncludeFilter | undefined, files: Record<string, string>, lines: string[], top: boolean): Promise<void> {
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      lines.push(`d ${rel} ${mode}`);
      const names = (await readdir(host)).sort();
      // Children are hashed concurrently, their lines kept in name order.
      const parts = await Promise.all(
        names.map(async (n) => {
          const childRel = rel === '.' ? n : `${rel}/${n}`;
          const child = posix.join(host, n);
          const cst = await lstat(child);
          if (include && !include(childRel, cst.isDirectory())) return [];
          const sub: string[] = [];
          await this.walk(child, childRel, cst, include, files, sub, false);
          return sub;
        }),
      );
      for (const p of parts) lines.push(...p);
      return;
    }
    if (st.isSymbolicLink() && !top) {
      const target = await readlink(host);
      files[rel] = `l:${target}`;
      lines.push(`l ${rel} ${target}`);
      return;
    }
    if (st.isFile()) {
      const d = await hashOps.run(() => this.fileDigest(host, st));
      files[rel] = d;
      lines.push(`f ${rel} ${mode} ${d}`);
      return;
    }
    lines.push(`o ${rel} ${mode}`);
  }
}
