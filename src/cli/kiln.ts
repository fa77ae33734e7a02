#!/usr/bin/env node
/**
 * The `kiln` bin: loads the bundled CLI (kiln-bundle.cjs, built by scripts/bundle-cli.mjs) with
 * V8's code cache.
 *
 * Every kiln run used to compile the 640 KB bundle from source (~12 ms) and then each function
 * the run reached, lazily, on first call. The cache V8 writes after a run holds all of that
 * bytecode, so the next run deserializes instead of compiling. It is kept per user in
 * ~/.cache/kiln/v8/ (XDG_CACHE_HOME), named by the Node version, architecture, the bundle's
 * size, mtime and inode, and whether the run is a build (builds reach far more code); V8 itself refuses a cache made for other source or flags, and the
 * bundle is then compiled as before (and the cache rewritten). A cache file not owned by this
 * user is never read (a shared HOME under sudo). KILN_NO_CODE_CACHE=1 turns it off.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';

const bundle = join(dirname(fileURLToPath(import.meta.url)), 'kiln-bundle.cjs');

/** The cache file for this bundle and Node, or undefined when caching is off. */
function cachePath(): string | undefined {
  if (process.env.KILN_NO_CODE_CACHE === '1') return undefined;
  try {
    const st = statSync(bundle);
    const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
    // Builds reach far more code than `kiln --version` or `kiln images`: each keeps its own cache.
    const kind = process.argv[2] === 'build' ? 'build' : 'cli';
    return join(base, 'kiln', 'v8', `${process.version}-${process.arch}-${st.size}-${Math.floor(st.mtimeMs)}-${st.ino}.${kind}.bin`);
  } catch {
    return undefined;
  }
}

/** The cache's bytes when the file exists and belongs to this user. */
function readOwnFile(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    if (typeof process.geteuid === 'function' && fstatSync(fd).uid !== process.geteuid()) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function writeAtomically(path: string, data: Buffer): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    // a read-only or full home: run without the cache
  }
}

// V8 stamps a code cache with a hash of its flags and refuses it when they differ. kiln sets
// --liftoff-only before loading undici (registry/wasm-tiering.ts): set it here, before the
// compile, so the cache written at exit matches the next run's start.
if (process.env.KILN_WASM_TIERUP !== '1') setFlagsFromString('--liftoff-only');

const cacheFile = cachePath();
const cached = cacheFile ? readOwnFile(cacheFile) : undefined;
const source = readFileSync(bundle, 'utf8');
// The CommonJS wrapper, as Node's own loader writes it, plus the bundle's URL (import.meta.url).
const script = new Script(`(function (exports, require, module, __filename, __dirname, __kilnBundleUrl) {${source}\n})`, {
  filename: bundle,
  ...(cached ? { cachedData: cached } : {}),
});
if (cacheFile && (!cached || script.cachedDataRejected)) {
  // After the run: the cache then holds the functions this run compiled, not just the top level.
  process.once('exit', () => writeAtomically(cacheFile, script.createCachedData()));
}
const mod: { exports: { runCli?: () => void } } = { exports: {} };
(script.runInThisContext() as (e: object, r: NodeRequire, m: object, f: string, d: string, u: string) => void)(mod.exports, createRequire(bundle), mod, bundle, dirname(bundle), pathToFileURL(bundle).href);
mod.exports.runCli!();
