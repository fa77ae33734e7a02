/**
 * Harness for the end-to-end build tests (e2e*.test.ts): a local registry with
 * the busybox fixture, a shared $KILN_ROOT, contexts written from literals,
 * builds through the public API, and validation of every image written:
 * manifest/config digests, layer sizes and diffIds recomputed from the blobs,
 * plus `skopeo inspect` and `umoci unpack` on the store (an OCI layout).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import * as assert from 'uvu/assert';
import { openContentStore } from '../../src/content/oci-layout-store.js';
import { type BuildOptions, type BuildResult, build } from '../../src/export/build-and-export.js';
import { unpackImage } from '../../src/export/export-image.js';
import type { Digest } from '../../src/oci/digest.js';
import type { ImageConfig, Manifest } from '../../src/oci/manifest.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';

const run = promisify(execFile);

export interface E2EEnv {
  reg: TestRegistry;
  /** "127.0.0.1:PORT/busybox:latest" */
  busybox: string;
  root: string;
  work: string;
  n: number;
}

let shared: Promise<E2EEnv> | undefined;

/** One registry + store for every case of a test file. */
export function e2eEnv(): Promise<E2EEnv> {
  shared ??= (async () => {
    const reg = await startRegistry();
    const busybox = await pushBusybox(reg);
    const work = await mkdtemp(join(tmpdir(), 'kiln-e2e-'));
    const root = join(work, 'root');
    return { reg, busybox, root, work, n: 0 };
  })();
  return shared;
}

export async function closeEnv(): Promise<void> {
  if (!shared) return;
  const env = await shared;
  shared = undefined;
  await env.reg.stop();
  // Overlay mounts are released by the build; remove what is left.
  await rm(env.work, { recursive: true, force: true }).catch(() => undefined);
}

/** Context entries: "name": content | { content, mode } | { link } | { dir: true }. */
export type CtxEntry = string | Buffer | { content: string | Buffer; mode?: number } | { link: string } | { dir: true; mode?: number };
export type Ctx = Record<string, CtxEntry>;

export async function writeContext(dir: string, ctx: Ctx): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, e] of Object.entries(ctx)) {
    const p = join(dir, name);
    await mkdir(dirname(p), { recursive: true });
    if (typeof e === 'string' || Buffer.isBuffer(e)) await writeFile(p, e);
    else if ('link' in e) await symlink(e.link, p);
    else if ('dir' in e) {
      await mkdir(p, { recursive: true });
      if (e.mode !== undefined) await chmod(p, e.mode);
    } else {
      await writeFile(p, e.content);
      if (e.mode !== undefined) await chmod(p, e.mode);
    }
  }
}

/** Replace the word busybox in FROM / --from= with the fixture reference. */
export function withBusybox(env: E2EEnv, dockerfile: string): string {
  return dockerfile.replace(/(^\s*FROM\s+(?:--platform=\S+\s+)?|--from=)busybox\b/gim, `$1${env.busybox}`);
}

export interface CaseSpec {
  dockerfile: string;
  ctx?: Ctx;
  /** Reuse a context dir (for cache tests). */
  contextDir?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  opts?: Partial<BuildOptions>;
  /** Dockerfile name in the context (default "Dockerfile"), or an absolute path. */
  file?: string;
}

export interface CaseResult {
  result: BuildResult;
  config: ImageConfig;
  manifest: Manifest;
  log: string;
  contextDir: string;
  /** The image's root filesystem (unpacked on first use). */
  fs(): Promise<string>;
  read(path: string): Promise<string>;
  exists(path: string): Promise<boolean>;
}

async function prepare(env: E2EEnv, spec: CaseSpec): Promise<{ dir: string; file: string }> {
  const dir = spec.contextDir ?? join(env.work, `ctx-${++env.n}`);
  if (!spec.contextDir) await writeContext(dir, spec.ctx ?? {});
  const file = spec.file && isAbsolute(spec.file) ? spec.file : join(dir, spec.file ?? 'Dockerfile');
  await writeFile(file, withBusybox(env, spec.dockerfile));
  return { dir, file };
}

/** Build a case and validate the image it wrote. */
export async function buildCase(env: E2EEnv, spec: CaseSpec): Promise<CaseResult> {
  const { dir, file } = await prepare(env, spec);
  let log = '';
  const tag = `e2e-case-${env.n}-${Date.now()}`;
  const result = await build({
    context: dir,
    file,
    tags: [tag],
    kilnRoot: env.root,
    buildArgs: spec.buildArgs ?? {},
    ...(spec.target !== undefined ? { target: spec.target } : {}),
    onEvent: (e) => {
      if (e.type === 'step-log') log += e.data;
      if (e.type === 'warning' || e.type === 'info') log += e.message + '\n';
      if (e.type === 'explain') log += `explain ${e.hit ? 'hit' : 'miss'} ${e.name} ${e.reasons.join('; ')}\n`;
      if (e.type === 'step-done') log += `done ${e.id} cached=${e.cached}\n`;
    },
    ...(spec.opts ?? {}),
  });
  const { manifest, config } = await validateImage(env.root, result.manifest.digest);
  await checkWithTools(env.root, result.names[0]!);
  let fsDir: string | undefined;
  const fs = async () => {
    if (!fsDir) {
      fsDir = join(env.work, `fs-${env.n}-${Math.random().toString(36).slice(2)}`);
      await unpackImage(openContentStore(env.root), { manifest: result.manifest, config: result.config, layers: result.layers }, fsDir);
    }
    return fsDir;
  };
  return {
    result,
    config,
    manifest,
    log,
    contextDir: dir,
    fs,
    read: async (p) => readFile(join(await fs(), p), 'utf8'),
    exists: async (p) => {
      try {
        await lstat(join(await fs(), p));
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** Build a case that must fail (the build itself, not a later check); returns the error message. */
export async function buildFails(env: E2EEnv, spec: CaseSpec, ...expect: string[]): Promise<string> {
  const { dir, file } = await prepare(env, spec);
  let err: unknown;
  try {
    await build({ context: dir, file, kilnRoot: env.root, buildArgs: spec.buildArgs ?? {}, ...(spec.target !== undefined ? { target: spec.target } : {}), ...(spec.opts ?? {}) });
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'the build should have failed');
  const msg = String((err as Error).message);
  for (const x of expect) assert.ok(msg.includes(x), `error "${msg}" should contain "${x}"`);
  return msg;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Recompute every digest the image claims: manifest, config, each layer's digest, size and diffId. */
export async function validateImage(root: string, manifestDigest: Digest): Promise<{ manifest: Manifest; config: ImageConfig }> {
  const blob = (d: string) => readFile(join(root, 'blobs', 'sha256', d.slice(7)));
  const mBytes = await blob(manifestDigest);
  assert.is(sha(mBytes), manifestDigest, 'manifest digest');
  const manifest = JSON.parse(mBytes.toString()) as Manifest;
  const cBytes = await blob(manifest.config.digest);
  assert.is(sha(cBytes), manifest.config.digest, 'config digest');
  assert.is(cBytes.length, manifest.config.size, 'config size');
  const config = JSON.parse(cBytes.toString()) as ImageConfig;
  assert.is(config.rootfs.diff_ids.length, manifest.layers.length, 'one diffId per layer');
  for (let i = 0; i < manifest.layers.length; i++) {
    const l = manifest.layers[i]!;
    const b = await blob(l.digest);
    assert.is(b.length, l.size, `layer ${i} size`);
    assert.is(sha(b), l.digest, `layer ${i} digest`);
    const raw = l.mediaType.includes('gzip') ? await gunzip(b) : b;
    assert.is(sha(raw), config.rootfs.diff_ids[i], `layer ${i} diffId`);
  }
  const nonEmpty = (config.history ?? []).filter((h) => !h.empty_layer).length;
  assert.is(nonEmpty, manifest.layers.length, 'history entries without empty_layer = layers');
  return { manifest, config };
}

function gunzip(b: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const z = createGunzip();
    z.on('data', (c: Buffer) => chunks.push(c));
    z.on('end', () => resolve(Buffer.concat(chunks)));
    z.on('error', reject);
    z.end(b);
  });
}

/** Independent tools read the image from the store: skopeo inspect and umoci unpack. */
export async function checkWithTools(root: string, name: string): Promise<void> {
  const { stdout } = await run('skopeo', ['inspect', `oci:${root}:${name}`], { timeout: 60_000 });
  const info = JSON.parse(stdout) as { Layers: string[] };
  assert.ok(Array.isArray(info.Layers), 'skopeo inspect lists layers');
  const bundle = await mkdtemp(join(tmpdir(), 'kiln-umoci-'));
  try {
    // raw unpack: the rootfs only (a runtime config would need USER to resolve in scratch images).
    await run('umoci', ['raw', 'unpack', '--image', `${root}:${name}`, join(bundle, 'rootfs')], { timeout: 60_000 });
    await readdir(join(bundle, 'rootfs'));
  } finally {
    await rm(bundle, { recursive: true, force: true });
  }
}

export async function isSymlinkTo(path: string, target: string): Promise<boolean> {
  try {
    return (await readlink(path)) === target;
  } catch {
    return false;
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}
