import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { isIndexMediaType, isManifestMediaType } from '../oci/media-types.js';
import type { OciLayoutStore } from './oci-layout-store.js';
import type { BlobInfo } from './types.js';
import { VerifyStream } from './verify-stream.js';
import { pipeline } from 'node:stream/promises';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { DigestMismatchError } from '../errors.js';

export interface GcResult {
  removed: BlobInfo[];
  kept: number;
  bytesFreed: number;
}

/**
 * Every blob reachable from `roots`: manifests → config, layers (and subject);
 * indexes → their manifests. Children that are missing from the store (a
 * single-platform pull of an index) are skipped, not errors.
 */
export async function reachableBlobs(store: OciLayoutStore, roots: Descriptor[]): Promise<Set<Digest>> {
  const seen = new Set<Digest>();
  const queue = [...roots];
  while (queue.length) {
    const d = queue.pop()!;
    if (seen.has(d.digest)) continue;
    if (!(await store.stat(d.digest))) continue;
    seen.add(d.digest);
    const mt = d.mediaType;
    if (!isManifestMediaType(mt) && !isIndexMediaType(mt)) continue;
    let doc: { mediaType?: string; config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[]; subject?: Descriptor };
    try {
      doc = JSON.parse((await store.read(d.digest)).toString('utf8'));
    } catch {
      continue; // unreadable: keep the blob itself, its children stay unmarked
    }
    if (doc.config) queue.push(doc.config);
    if (doc.layers) queue.push(...doc.layers);
    if (doc.manifests) queue.push(...doc.manifests);
    if (doc.subject) queue.push(doc.subject);
  }
  return seen;
}

/**
 * Remove blobs no tag (and no `extraRoots`, e.g. build-cache records owned by
 * other modules) reaches, and stale ingest temp files. `dryRun` only reports.
 */
export async function collectGarbage(store: OciLayoutStore, options: { extraRoots?: Descriptor[]; dryRun?: boolean } = {}): Promise<GcResult> {
  const tags = await store.listTags();
  const live = await reachableBlobs(store, [...tags.map((t) => t.descriptor), ...(options.extraRoots ?? [])]);
  const removed: BlobInfo[] = [];
  let kept = 0;
  for (const b of await store.listBlobs()) {
    if (live.has(b.digest)) {
      kept++;
      continue;
    }
    if (!options.dryRun) await store.delete(b.digest);
    removed.push(b);
  }
  if (!options.dryRun) await store.cleanIngest();
  return { removed, kept, bytesFreed: removed.reduce((n, b) => n + b.size, 0) };
}

export interface VerifyReport {
  checked: number;
  bytes: number;
  mismatches: Array<{ digest: Digest; actual: string; size: number }>;
  /** Digests named by tags but absent from the store. */
  missingTagged: Array<{ name: string; digest: Digest }>;
}

/** Rehash every blob in the store; report (never delete) mismatches. */
export async function verifyStore(store: OciLayoutStore): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, bytes: 0, mismatches: [], missingTagged: [] };
  for (const b of await store.listBlobs()) {
    report.checked++;
    report.bytes += b.size;
    if (!isDigest(b.digest)) {
      report.mismatches.push({ digest: b.digest, actual: 'not a valid digest file name', size: b.size });
      continue;
    }
    try {
      await pipeline(createReadStream(store.blobPath(b.digest)), new VerifyStream(b.digest), new Writable({ write: (_c, _e, cb) => cb() }));
    } catch (err) {
      if (err instanceof DigestMismatchError) report.mismatches.push({ digest: b.digest, actual: err.actual, size: b.size });
      else throw err;
    }
  }
  for (const t of await store.listTags()) {
    if (!(await store.stat(t.descriptor.digest))) report.missingTagged.push({ name: t.name, digest: t.descriptor.digest });
  }
  return report;
}
