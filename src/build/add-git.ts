import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KilnError } from '../errors.js';

const run = promisify(execFile);

/** A git source of ADD: `URL[#REF[:SUBDIR]]` with an https, http, ssh, git:// or scp-like (git@host:repo) URL. */
export interface GitSource {
  url: string;
  ref?: string;
  subdir?: string;
}

/** Is this ADD source a git repository (BuildKit's rules, simplified: git:// and git@, or a URL ending in .git). */
export function isGitSource(s: string): boolean {
  const base = s.split('#')[0]!;
  return /^git:\/\//.test(base) || /^git@[^:]+:/.test(base) || /^ssh:\/\//.test(base) || (/^https?:\/\//.test(base) && /\.git$/.test(base));
}

export function parseGitSource(s: string): GitSource {
  const hash = s.indexOf('#');
  const url = hash === -1 ? s : s.slice(0, hash);
  const frag = hash === -1 ? '' : s.slice(hash + 1);
  const out: GitSource = { url };
  if (frag) {
    const colon = frag.indexOf(':');
    const ref = colon === -1 ? frag : frag.slice(0, colon);
    const subdir = colon === -1 ? '' : frag.slice(colon + 1);
    if (ref) out.ref = ref;
    if (subdir) out.subdir = subdir;
  }
  return out;
}

export interface GitCheckout {
  /** Directory with the checked-out tree (the subdir, when one was given). */
  dir: string;
  /** The commit checked out (the cache key input). */
  commit: string;
  release(): Promise<void>;
}

/**
 * Shallow-fetch `ref` (default HEAD) of a repository with the host's git and
 * check it out in a temp dir; `.git` is removed unless keepGitDir. Runs git
 * with no terminal prompts and no user/system config, and a timeout.
 */
export async function checkoutGit(src: GitSource, opts: { keepGitDir: boolean }): Promise<GitCheckout> {
  const tmp = await mkdtemp(join(tmpdir(), 'kiln-git-'));
  const repo = join(tmp, 'repo');
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };
  const git = async (args: string[], cwd?: string) => {
    try {
      return (await run('git', args, { cwd, env, timeout: 600_000, maxBuffer: 16 << 20 })).stdout.trim();
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new KilnError('ADD_GIT', `Cannot fetch git source "${src.url}${src.ref ? `#${src.ref}` : ''}": ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' ')}`, { cause: err });
    }
  };
  try {
    await git(['init', '-q', repo]);
    await git(['remote', 'add', 'origin', src.url], repo);
    await git(['fetch', '-q', '--depth', '1', 'origin', src.ref ?? 'HEAD'], repo);
    await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', 'FETCH_HEAD'], repo);
    const commit = await git(['rev-parse', 'HEAD'], repo);
    if (!opts.keepGitDir) await rm(join(repo, '.git'), { recursive: true, force: true });
    const dir = src.subdir ? join(repo, src.subdir.replace(/^\/+/, '')) : repo;
    return { dir, commit, release: () => rm(tmp, { recursive: true, force: true }) };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
