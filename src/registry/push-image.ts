import { createReadStream } from 'node:fs';
import type { ContentStore } from '../content/types.js';
import { KilnError, NotFoundError, RegistryError } from '../errors.js';
import { parseManifestDocument } from '../image/manifest-document.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { type ImageReference, parseDockerRef } from '../oci/reference.js';
import { isRetryableNetworkError } from './http-util.js';
import { mapLimit } from './pull-image.js';
import type { Endpoint } from './registries-conf.js';
import type { RegistryClient } from './registry-client.js';

export interface PushOptions {
  client: RegistryClient;
  /** Parallel blob uploads (default 3). */
  concurrency?: number;
  /** PATCH chunk size (default 4 MiB); blobs up to `monolithicMax` (default = chunkSize) go in one PUT. */
  chunkSize?: number;
  monolithicMax?: number;
  /**
   * Repositories on the same registry that may hold the blobs, tried for a
   * cross-repository mount. Default: repositories of the store's tags on that registry.
   */
  mountFrom?: string[];
  signal?: AbortSignal;
  onProgress?: (event: PushProgress) => void;
}

export type PushProgress = { kind: 'exists' | 'mounted' | 'uploaded'; digest: string; size: number; from?: string } | { kind: 'manifest'; digest: string; reference: string };

export interface PushResult {
  reference: string;
  descriptor: Descriptor;
  /** Blobs per outcome. */
  uploaded: number;
  mounted: number;
  existed: number;
}

/** Repositories of local tags on the same registry host as `target` (candidates for mounts). */
async function mountCandidates(store: ContentStore, target: ImageReference): Promise<string[]> {
  const out = new Set<string>();
  for (const t of await store.listTags()) {
    try {
      const r = parseDockerRef(t.name);
      if (r.domain === target.domain && r.path !== target.path) out.add(r.path);
    } catch {
      /* not a reference */
    }
  }
  return [...out];
}

/**
 * Push an image (manifest or index, with every blob it needs from the store) to
 * `ref`. Per blob: HEAD (skip if present) → cross-repo mount (when a candidate
 * repository on that registry may have it) → upload (monolithic or chunked),
 * restarting a failed upload a few times. Manifests go as their exact stored
 * bytes with their media type; an index's manifests go first, by digest.
 */
export async function pushImage(store: ContentStore, source: Descriptor, ref: string | ImageReference, opts: PushOptions): Promise<PushResult> {
  const target = typeof ref === 'string' ? parseDockerRef(ref) : ref;
  const { client } = opts;
  const ep = client.endpoints(target, { forPush: true }).at(-1)!;
  const mountFrom = opts.mountFrom ?? (await mountCandidates(store, target));
  const counts = { uploaded: 0, mounted: 0, existed: 0 };
  const done = new Map<Digest, Promise<void>>();
  const present = new Map<Digest, Promise<boolean>>();

  // HEAD checks are cheap and independent: all of a manifest's go out at once (undici caps
  // connections per origin); only uploads are limited to `concurrency`.
  const checkBlob = (d: Descriptor): Promise<boolean> => {
    let p = present.get(d.digest);
    if (!p) {
      p = client.blobExists(ep, d.digest, opts.signal);
      p.catch(() => undefined); // awaited (and its error raised) by pushOneBlob
      present.set(d.digest, p);
    }
    return p;
  };

  const pushBlob = (d: Descriptor): Promise<void> => {
    let p = done.get(d.digest);
    if (!p) {
      p = pushOneBlob(store, ep, d, mountFrom, opts, counts, checkBlob(d));
      done.set(d.digest, p);
    }
    return p;
  };

  const pushManifest = async (d: Descriptor, reference: string): Promise<void> => {
    const raw = await store.read(d.digest);
    const doc = parseManifestDocument(raw, d.mediaType);
    if (doc.kind === 'index') {
      for (const child of doc.index.manifests) {
        if (!(await store.stat(child.digest))) {
          if (await client.headManifest(ep, child.digest, opts.signal)) continue;
          const plat = child.platform ? ` (${[child.platform.os, child.platform.architecture, child.platform.variant].filter(Boolean).join('/')})` : '';
          throw new NotFoundError(`Cannot push "${target}": manifest "${child.digest}"${plat} of the index is not in the store or the registry`, {
            hint: 'Only one platform of this image was pulled: push that platform alone (kiln push --platform OS/ARCH …).',
          });
        }
        await pushManifest(child, child.digest);
      }
    } else {
      // Non-distributable (foreign) layers stay where their `urls` point, as docker push does.
      const foreign = (b: Descriptor) => (b.urls?.length ?? 0) > 0 && /foreign|nondistributable/.test(b.mediaType);
      const blobs = [doc.manifest.config, ...doc.manifest.layers.filter((b) => !foreign(b))];
      for (const b of blobs) void checkBlob(b);
      await mapLimit(blobs, opts.concurrency ?? 3, (b) => pushBlob(b));
    }
    await client.putManifest(ep, reference, raw, doc.mediaType, opts.signal);
    opts.onProgress?.({ kind: 'manifest', digest: d.digest, reference });
  };

  if (!(await store.stat(source.digest))) throw new NotFoundError(`Cannot push "${target}": manifest "${source.digest}" is not in the store`);
  await pushManifest(source, target.digest ?? target.tag ?? 'latest');
  return { reference: target.toString(), descriptor: { mediaType: source.mediaType, digest: source.digest, size: source.size }, ...counts };
}

async function pushOneBlob(
  store: ContentStore,
  ep: Endpoint,
  d: Descriptor,
  mountFrom: string[],
  opts: PushOptions,
  counts: { uploaded: number; mounted: number; existed: number },
  exists: Promise<boolean>,
): Promise<void> {
  const { client, signal } = opts;
  if (await exists) {
    counts.existed++;
    opts.onProgress?.({ kind: 'exists', digest: d.digest, size: d.size });
    return;
  }
  const info = await store.stat(d.digest);
  if (!info) throw new NotFoundError(`Cannot push blob "${d.digest}" to "${ep.host}/${ep.repository}": it is not in the store`);
  let location: string | undefined;
  for (const from of mountFrom) {
    const r = await client.mountBlob(ep, d.digest, from, signal);
    if (r === true) {
      counts.mounted++;
      opts.onProgress?.({ kind: 'mounted', digest: d.digest, size: d.size, from });
      return;
    }
    location = r; // the registry opened an upload session instead
    break;
  }
  const path = store.blobPath(d.digest);
  const open = (start: number, end: number) => createReadStream(path, { start, end });
  const attempts = (client.options.retries ?? 4) + 1;
  for (let attempt = 0; ; attempt++) {
    try {
      location ??= await client.startUpload(ep, signal);
      const uopts: { chunkSize?: number; monolithicMax?: number; signal?: AbortSignal } = {};
      if (opts.chunkSize) uopts.chunkSize = opts.chunkSize;
      if (opts.monolithicMax !== undefined) uopts.monolithicMax = opts.monolithicMax;
      if (signal) uopts.signal = signal;
      await client.uploadBlob(ep, location, { digest: d.digest, size: info.size }, open, uopts);
      counts.uploaded++;
      opts.onProgress?.({ kind: 'uploaded', digest: d.digest, size: d.size });
      return;
    } catch (err) {
      location = undefined;
      const status = (err as RegistryError).status;
      const retryable = isRetryableNetworkError((err as KilnError).cause ?? err) || (status !== undefined && (status >= 500 || status === 429 || status === 404 || status === 416));
      if (!retryable || attempt + 1 >= attempts || signal?.aborted) throw err;
      client.log(`  upload of "${d.digest}" failed (${(err as Error).message}); starting it again`);
      await client.backoff(attempt, undefined, signal);
    }
  }
}
