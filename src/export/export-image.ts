import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import type { ContentStore } from '../content/types.js';
import { KilnError, UsageError } from '../errors.js';
import { applyLayer } from '../layer/apply.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseDockerRef } from '../oci/reference.js';
import { writeImageArchive } from './archive.js';
import type { OutputSpec } from './output-spec.js';

const run = promisify(execFile);

export interface ExportImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ExportRequest {
  store: ContentStore;
  image: ExportImage;
  /** -t names (normalised here). */
  tags: string[];
  outputs: OutputSpec[];
  /** --push: push every -t name (same as type=image,push=true). */
  push: boolean;
  insecureRegistries?: string[];
  stdout?: Writable;
  onInfo?: (message: string) => void;
  signal?: AbortSignal;
}

export interface ExportResult {
  /** Normalised names tagged in the local store and/or pushed. */
  names: string[];
  pushed: string[];
}

/** Normalise an image name as Docker does ("app" → "docker.io/library/app:latest"). */
export function normalizeName(name: string): string {
  try {
    return parseDockerRef(name).toString();
  } catch (err) {
    throw new UsageError(`Invalid tag "${name}": ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Write the built image to every requested output. With no -o, the image is
 * tagged in the local store (-t), as `docker build` does; --push also pushes.
 */
export async function exportImage(req: ExportRequest): Promise<ExportResult> {
  const tags = req.tags.map(normalizeName);
  const outputs = req.outputs.length ? [...req.outputs] : [{ type: 'image', names: [], push: req.push } as OutputSpec];
  if (req.push && !outputs.some((o) => o.type === 'image')) outputs.push({ type: 'image', names: [], push: true });
  const result: ExportResult = { names: [], pushed: [] };
  for (const out of outputs) {
    switch (out.type) {
      case 'image': {
        const names = [...new Set([...tags, ...out.names.map(normalizeName)])];
        const push = out.push || req.push;
        if (push && names.length === 0) throw new UsageError('Cannot push: the image has no name', { hint: 'Give a name with -t NAME or -o type=image,name=NAME,push=true.' });
        for (const n of names) await req.store.setTag(n, req.image.manifest);
        result.names.push(...names);
        if (push) {
          const { openRegistryClient, pushImage } = await import('../registry/index.js');
          const client = await openRegistryClient({ insecureRegistries: req.insecureRegistries ?? [] });
          try {
            for (const n of names) {
              req.onInfo?.(`pushing ${n}`);
              await pushImage(req.store, req.image.manifest, n, { client, signal: req.signal });
              result.pushed.push(n);
            }
          } finally {
            await client.close();
          }
        }
        break;
      }
      case 'oci':
      case 'docker': {
        const names = [...new Set([...tags, ...out.names.map(normalizeName)])];
        if (out.type === 'docker' && req.image.layers.some((l) => l.mediaType.includes('zstd'))) {
          throw new KilnError('EXPORT_DOCKER_ZSTD', 'Cannot write a docker archive with zstd layers: docker load reads gzip', { hint: 'Build with --compression gzip.' });
        }
        await writeImageArchive(req.store, { ...req.image, names }, out.dest === '-' ? '-' : resolve(out.dest), { docker: out.type === 'docker', stdout: req.stdout });
        req.onInfo?.(`wrote ${out.type} archive ${out.dest}`);
        break;
      }
      case 'local': {
        await unpackImage(req.store, req.image, resolve(out.dest));
        req.onInfo?.(`wrote ${out.dest}`);
        break;
      }
      case 'tar': {
        const tmp = await mkdtemp(join(tmpdir(), 'kiln-tar-'));
        try {
          const root = join(tmp, 'rootfs');
          await unpackImage(req.store, req.image, root);
          if (out.dest === '-') {
            if (!req.stdout) throw new UsageError('Cannot write a tar to stdout here');
            const { spawn } = await import('node:child_process');
            const child = spawn('tar', ['-C', root, '--numeric-owner', '--sort=name', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
            const { pipeline } = await import('node:stream/promises');
            await pipeline(child.stdout, req.stdout, { end: false });
          } else {
            await mkdir(resolve(out.dest, '..'), { recursive: true });
            await run('tar', ['-C', root, '--numeric-owner', '--sort=name', '-cf', resolve(out.dest), '.'], { timeout: 600_000 });
          }
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
        req.onInfo?.(`wrote ${out.dest}`);
        break;
      }
    }
  }
  return result;
}

/** Apply the image's layers, in order, into `dest` (created; whiteouts delete). */
export async function unpackImage(store: ContentStore, image: ExportImage, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  for (const l of image.layers) {
    await applyLayer({ store, digest: l.digest, size: l.size }, dest, { mediaType: l.mediaType, whiteoutMode: 'delete' });
  }
}
