/**
 * The build context as BuildKit sends it: the context directory walked in lexical order, with
 * the .dockerignore patterns applied the way tonistiigi/fsutil's filtered walk applies them.
 *
 * Contract:
 * - Entries come depth-first, each directory before its children, siblings sorted by the bytes
 *   of their names (Go's filepath.WalkDir order). Paths are "/"-separated and relative.
 * - Symlinks are never followed: a symlink is an entry of its own (its target is reported).
 * - An excluded file is dropped. An excluded directory is skipped whole unless a `!` pattern could
 *   re-include something below it; then it is walked, and emitted (just before the first
 *   re-included descendant) only if something below it is re-included.
 * - Unreadable directories that are excluded are treated as empty; an unreadable included
 *   directory is an error.
 * - The Dockerfile and the ignore file are ordinary entries (the builder reads them anyway).
 */
import type { Stats } from 'node:fs';
import { chmod, copyFile, link, lstat, lutimes, mkdir, readFile, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { KilnError } from '../errors.js';
import { DockerignoreError, type ParentMatchInfo, PatternMatcher, parseDockerignore, selectDockerignore } from '../dockerfile/dockerignore.js';

export type ContextEntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface ContextEntry {
  /** Relative, "/"-separated path inside the context. */
  path: string;
  type: ContextEntryType;
  /** Absolute host path. */
  hostPath: string;
  /** Permission bits and file type as lstat reports them. */
  mode: number;
  size: number;
  mtimeMs: number;
  uid: number;
  gid: number;
  /** For symlinks: the link text, as stored. */
  linkTarget?: string;
  /** For a regular file whose inode an earlier entry of this walk already had: that entry's path. */
  hardlinkOf?: string;
}

/** The ignore rules that apply to a context. */
export interface ContextIgnore {
  /** The ignore file used (absolute), if any. */
  file?: string;
  /** Parsed patterns, in order. */
  patterns: string[];
}

export interface WalkContextOptions {
  /** Exclude patterns (already parsed, e.g. from parseDockerignore). */
  patterns?: readonly string[];
  /** Or a ready matcher (wins over patterns). */
  matcher?: PatternMatcher;
  signal?: AbortSignal;
}

/** Read the ignore file a build uses: `<dockerfile>.dockerignore` if present, else `<context>/.dockerignore`. */
export async function readContextIgnore(contextDir: string, dockerfilePath?: string): Promise<ContextIgnore> {
  const dockerfile = dockerfilePath ?? join(contextDir, 'Dockerfile');
  const file = selectDockerignore(dockerfile, contextDir, (p) => existsSync(p));
  if (!file) return { patterns: [] };
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new KilnError('DOCKERIGNORE_UNREADABLE', `Cannot read "${file}": ${(err as Error).message}`, { cause: err });
  }
  try {
    return { file, patterns: parseDockerignore(text) };
  } catch (err) {
    throw new DockerignoreError(`Cannot parse "${file}": ${(err as Error).message}`, { cause: err });
  }
}

/** Build the matcher for patterns, naming the ignore file in the error. */
export function contextMatcher(ignore: ContextIgnore): PatternMatcher {
  try {
    return new PatternMatcher(ignore.patterns);
  } catch (err) {
    const where = ignore.file ? `"${ignore.file}"` : 'the exclude patterns';
    throw new DockerignoreError(`Cannot apply ${where}: ${(err as Error).message}`, {
      cause: err,
      hint: 'Fix the pattern: "!" needs a path after it, and [ ] classes must be closed.',
    });
  }
}

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function entryType(st: Stats): ContextEntryType {
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFile()) return 'file';
  return 'other';
}

/** The part of a pattern before its first wildcard or escape: every path it matches starts with it. */
function literalPrefix(pattern: string): string {
  const i = pattern.search(/[*?[\\^]/);
  return i === -1 ? pattern : pattern.slice(0, i);
}

/**
 * Walk the filtered context. Throws DockerignoreError for bad patterns (even if no path would
 * reach them, a bare "!" or an unclosed class fails up front), KilnError for unreadable paths.
 */
export async function* walkContext(contextDir: string, options: WalkContextOptions = {}): AsyncGenerator<ContextEntry> {
  const matcher = options.matcher ?? (options.patterns && options.patterns.length > 0 ? contextMatcher({ patterns: [...options.patterns] }) : undefined);
  const exceptionPrefixes = matcher ? matcher.patterns.filter((p) => p.exclusion).map((p) => literalPrefix(p.text)) : [];
  /** Could a `!` pattern re-include something below directory `rel`? */
  const mayReinclude = (rel: string) =>
    exceptionPrefixes.some((p) => p === rel || p.startsWith(rel + '/') || (rel + '/').startsWith(p));

  const pending: ContextEntry[] = []; // excluded ancestors, emitted only before a re-included descendant
  const inodes = new Map<string, string>(); // "dev:ino" of emitted multi-link files → first path

  async function* visit(absDir: string, relDir: string, parentInfo: ParentMatchInfo | undefined, excludedDir: boolean): AsyncGenerator<ContextEntry> {
    options.signal?.throwIfAborted();
    let names: string[];
    try {
      names = await readdir(absDir);
    } catch (err) {
      if (excludedDir) return;
      throw new KilnError('CONTEXT_UNREADABLE', `Cannot read build context directory "${relDir || '.'}": ${(err as Error).message}`, { cause: err });
    }
    names.sort(byteOrder);
    for (const name of names) {
      const rel = relDir ? `${relDir}/${name}` : name;
      const abs = join(absDir, name);
      let st: Stats;
      try {
        st = await lstat(abs);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // vanished while walking
        throw new KilnError('CONTEXT_UNREADABLE', `Cannot stat build context path "${rel}": ${(err as Error).message}`, { cause: err });
      }
      const type = entryType(st);
      let excluded = false;
      let info: ParentMatchInfo | undefined;
      if (matcher) {
        let r;
        try {
          r = matcher.matchesUsingParentResults(rel, parentInfo);
        } catch (err) {
          throw new DockerignoreError(`Cannot match build context path "${rel}" against the exclude patterns: ${(err as Error).message}`, { cause: err });
        }
        excluded = r.excluded;
        info = r.info;
      }
      const entry: ContextEntry = {
        path: rel,
        type,
        hostPath: abs,
        mode: st.mode,
        size: st.size,
        mtimeMs: st.mtimeMs,
        uid: st.uid,
        gid: st.gid,
      };
      if (type === 'symlink') entry.linkTarget = await readlink(abs);
      if (excluded) {
        if (type !== 'dir' || !matcher!.hasExclusions || !mayReinclude(rel)) continue;
        pending.push(entry);
        yield* visit(abs, rel, info, true);
        if (pending[pending.length - 1] === entry) pending.pop();
        continue;
      }
      if (pending.length > 0) {
        yield* pending;
        pending.length = 0;
      }
      if (type === 'file' && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = inodes.get(key);
        if (first === undefined) inodes.set(key, rel);
        else entry.hardlinkOf = first;
      }
      yield entry;
      if (type === 'dir') yield* visit(abs, rel, info, false);
    }
  }

  yield* visit(contextDir, '', undefined, false);
}

/** All entries of the filtered context, in walk order. */
export async function listContext(contextDir: string, options: WalkContextOptions = {}): Promise<ContextEntry[]> {
  const out: ContextEntry[] = [];
  for await (const e of walkContext(contextDir, options)) out.push(e);
  return out;
}

/** "file P" / "dir P" / "symlink:TARGET P" / "other P" lines, the conformance listing format. */
export function formatContextListing(entries: readonly ContextEntry[]): string[] {
  return entries.map((e) => (e.type === 'symlink' ? `symlink:${e.linkTarget} ${e.path}` : `${e.type} ${e.path}`));
}

/** The ignore rules of a build plus its filtered listing: what `COPY . /dst` sees. */
export async function loadBuildContext(contextDir: string, dockerfilePath?: string, signal?: AbortSignal): Promise<{ ignore: ContextIgnore; entries: ContextEntry[] }> {
  const ignore = await readContextIgnore(contextDir, dockerfilePath);
  const matcher = contextMatcher(ignore);
  const entries = await listContext(contextDir, { matcher, ...(signal ? { signal } : {}) });
  return { ignore, entries };
}

/**
 * An include predicate over context paths, exact for the walk above: true only for paths the
 * filtered context contains. (Shape matches build/copy-files IncludeFilter.)
 */
export function includeFilterFor(entries: readonly ContextEntry[]): (rel: string, isDir: boolean) => boolean {
  const types = new Map(entries.map((e) => [e.path, e.type] as const));
  return (rel, isDir) => {
    const t = types.get(rel);
    return t !== undefined && (isDir ? t === 'dir' : true);
  };
}

/**
 * Copy what `COPY . destDir` would see: directories, regular files and symlinks (as links), with
 * permission bits and modification times; files hard-linked together in the context stay linked. Ownership is left to the caller (COPY sets it in the
 * layer). A fifo, socket or device in the context is refused with a clear error.
 * Returns the entries copied, in walk order. destDir must exist.
 */
export async function copyContext(contextDir: string, destDir: string, options: WalkContextOptions = {}): Promise<ContextEntry[]> {
  const copied: ContextEntry[] = [];
  const dirs: ContextEntry[] = [];
  for await (const e of walkContext(contextDir, options)) {
    const dst = join(destDir, ...e.path.split('/'));
    switch (e.type) {
      case 'dir':
        await mkdir(dst, { recursive: true });
        await chmod(dst, e.mode & 0o7777);
        dirs.push(e);
        break;
      case 'file':
        if (e.hardlinkOf !== undefined) {
          await link(join(destDir, ...e.hardlinkOf.split('/')), dst);
          break;
        }
        await copyFile(e.hostPath, dst);
        await chmod(dst, e.mode & 0o7777);
        await utimes(dst, e.mtimeMs / 1000, e.mtimeMs / 1000);
        break;
      case 'symlink':
        await symlink(e.linkTarget!, dst);
        await lutimes(dst, e.mtimeMs / 1000, e.mtimeMs / 1000);
        break;
      default:
        throw new KilnError('CONTEXT_UNSUPPORTED_FILE', `Cannot copy build context path "${e.path}": not a regular file, directory or symlink`, {
          hint: 'Remove the fifo, socket or device from the context, or list it in .dockerignore.',
        });
    }
    copied.push(e);
  }
  // Directory times last, children first, so writing into them does not disturb them.
  for (const d of dirs.reverse()) {
    const dst = join(destDir, ...d.path.split('/'));
    await utimes(dst, d.mtimeMs / 1000, d.mtimeMs / 1000);
  }
  return copied;
}
