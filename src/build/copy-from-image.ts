import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { posix } from 'node:path';
import type { ContentStore } from '../content/types.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { ImageConfig } from '../oci/manifest.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import { parseManifestDocument } from '../image/manifest-document.js';
import { selectManifest } from '../image/select-platform.js';
import { decompressed } from '../layer/decompress.js';
import { readTar } from '../layer/tar-reader.js';
import type { ApplyLayer } from '../layer/types.js';
import type { Endpoint } from '../registry/registries-conf.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { hasWildcard } from './glob.js';
import type { LayerRef } from './image-state.js';

/**
 * COPY --from=<image> (an image, not a stage) of literal paths without
 * fetching the whole image: the manifest and config are resolved first (the
 * step's cache key needs only the manifest digest); on a cache miss the layers
 * are fetched from the TOP down and listed until every source path is settled
 * by a layer (a regular file entry, or hidden by a whiteout / opaque marker of
 * it or a parent); then only the fetched layers are applied, bottom to top, to
 * a scratch directory that stands in for the image's rootfs. Lower layers are
 * never downloaded.
 *
 * Anything this cannot decide for certain returns "unsure" and the caller
 * takes the full path (whole image pulled and materialised), so results and
 * errors equal the full path's: symlinks or hard links as the source or a
 * parent, directories (they need every layer unless an opaque marker settles
 * them), a parent without a directory entry in the settling layer (a lower
 * layer could make it a symlink), a layer that does not apply on its own.
 */

export interface PartialImageOptions {
  store: ContentStore;
  platform: Platform;
  insecureRegistries: string[];
  signal?: AbortSignal;
}

export interface PartialExtract {
  /** Scratch rootfs holding the fetched layers; remove it with `release`. */
  dir: string;
  release(): Promise<void>;
  layersFetched: number;
  layersTotal: number;
  /** Compressed bytes of the layers used (downloaded now or already stored). */
  bytesUsed: number;
  /** Compressed bytes of all the image's layers. */
  bytesTotal: number;
}

/** True when every source is a literal path this module can settle (no wildcard, no "..", no trailing "/"). */
export function literalSources(sources: string[]): boolean {
  return sources.length > 0 && sources.every((s) => !hasWildcard(s) && !s.endsWith('/') && !s.split('/').includes('..') && sourcePath(s) !== '');
}

/** Source path relative to the image root ("/etc/app.conf" → "etc/app.conf"). */
function sourcePath(s: string): string {
  return posix.normalize(`/${s}`).replace(/^\/+/, '').replace(/\/+$/, '');
}

/** What one layer says about one source path. */
export type Verdict = 'none' | 'file' | 'dir' | 'absent' | 'unsure';

/** Entries of one layer that concern the source paths. */
export interface LayerListing {
  /** Normalised path → entry type, for the sources, their parents and (first) descendants. */
  entries: Map<string, string>;
  /** Paths whited out (".wh.NAME" → "DIR/NAME"). */
  whiteouts: Set<string>;
  /** Directories marked opaque ("" is the root). */
  opaque: Set<string>;
  /** Sources with an entry below them in this layer (they are directories here). */
  withChildren: Set<string>;
}

const WH = '.wh.';
const OPQ = '.wh..wh..opq';

function ancestors(p: string): string[] {
  const parts = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

function entryName(name: string): string | undefined {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.join('/');
}

/** Exported for unit tests: the verdict of one layer's listing on source path `p`. */
export function judge(l: LayerListing, p: string): Verdict {
  const up = ancestors(p);
  // A parent that is not a directory here (symlink, file): unsure.
  if (up.some((a) => l.entries.has(a) && l.entries.get(a) !== 'dir')) return 'unsure';
  const hiddenBelow = l.opaque.has('') || up.some((a) => l.whiteouts.has(a) || l.opaque.has(a));
  const parentsListed = up.every((a) => l.entries.get(a) === 'dir');
  const type = l.entries.get(p);
  if (type !== undefined) {
    // A whiteout of itself in the same layer, or a non-directory with entries below it: malformed or ambiguous.
    if (l.whiteouts.has(p) || (type !== 'dir' && (l.withChildren.has(p) || l.opaque.has(p)))) return 'unsure';
    // A lower layer could make a parent a symlink unless this layer lists every parent as a directory.
    if (!parentsListed) return 'unsure';
    if (type === 'file') return 'file';
    // A directory is whole here only when nothing below it shows through.
    if (type === 'dir' && (l.opaque.has(p) || hiddenBelow)) return 'dir';
    return 'unsure'; // symlink, hard link, device, or a directory lower layers add to
  }
  if (l.withChildren.has(p) || l.opaque.has(p)) return 'unsure';
  if (l.whiteouts.has(p) || hiddenBelow) return 'absent';
  return 'none';
}

/** List one layer blob's entries that concern `paths`. */
async function listLayer(store: ContentStore, desc: Descriptor, paths: string[]): Promise<LayerListing | undefined> {
  const l: LayerListing = { entries: new Map(), whiteouts: new Set(), opaque: new Set(), withChildren: new Set() };
  const wanted = new Set<string>();
  for (const p of paths) for (const a of [...ancestors(p), p]) wanted.add(a);
  const { stream } = await decompressed(await store.open(desc.digest));
  for await (const e of readTar(stream)) {
    const name = entryName(e.header.name);
    if (name === undefined) return undefined; // unsafe entry: the full path reports it
    const base = posix.basename(name);
    const dir = name.includes('/') ? posix.dirname(name) : '';
    if (base === OPQ) l.opaque.add(dir);
    else if (base.startsWith(WH)) l.whiteouts.add(dir === '' ? base.slice(WH.length) : `${dir}/${base.slice(WH.length)}`);
    else {
      if (wanted.has(name)) l.entries.set(name, e.header.type);
      for (const p of paths) if (name.startsWith(`${p}/`)) l.withChildren.add(p);
    }
  }
  // Whiteouts / opaque markers below a source also make it a directory here.
  for (const p of paths) {
    for (const w of [...l.whiteouts, ...l.opaque]) if (w.startsWith(`${p}/`)) l.withChildren.add(p);
  }
  return l;
}

/**
 * An image resolved to its manifest and config, without layer blobs.
 * `open` returns undefined where this path does not apply (a short name with
 * several candidate registries): the caller then resolves the image as usual.
 */
export class PartialImage {
  private constructor(
    readonly ref: string,
    readonly manifestDigest: Digest,
    readonly config: ImageConfig,
    readonly layers: LayerRef[],
    private readonly endpoint: Endpoint,
    private readonly opts: PartialImageOptions,
  ) {}

  static async open(ref: string, opts: PartialImageOptions): Promise<PartialImage | undefined> {
    const { openRegistryClient, candidateReferences } = await import('../registry/index.js');
    const { firstEndpoint } = await import('../registry/resolve-reference.js');
    const client = await openRegistryClient({ insecureRegistries: opts.insecureRegistries });
    try {
      const cands = candidateReferences(ref, client.conf);
      if (cands.length !== 1) return undefined;
      const cand = cands[0]!;
      return await firstEndpoint(client.endpoints(cand), async (ep) => {
        const top = await client.getManifest(ep, cand.manifestReference, opts.signal);
        let raw = top.raw;
        let desc = top.descriptor;
        let doc = parseManifestDocument(raw, desc.mediaType);
        if (doc.kind === 'index') {
          const child = selectManifest(doc.index, opts.platform, `"${ref}"`);
          const got = await client.getManifest(ep, child.digest, opts.signal);
          if (got.descriptor.digest !== child.digest || got.descriptor.size !== child.size) throw new Error(`manifest for ${formatPlatform(opts.platform)} does not match the index`);
          raw = got.raw;
          desc = child;
          doc = parseManifestDocument(raw, child.mediaType);
        }
        if (doc.kind !== 'manifest') throw new Error(`"${ref}" is not an image manifest`);
        const m = doc.manifest;
        if (m.layers.some((d) => d.urls?.length)) throw new Error('foreign layers');
        await opts.store.write(raw, { digest: desc.digest, size: desc.size, what: `manifest of "${ref}"` });
        const { fetchBlob } = await import('../registry/fetch-blob.js');
        await fetchBlob(client, ep, m.config, opts.store, { what: `config of "${ref}"`, ...(opts.signal ? { signal: opts.signal } : {}) });
        const config = JSON.parse((await opts.store.read(m.config.digest)).toString('utf8')) as ImageConfig;
        const diffIds = config.rootfs?.diff_ids ?? [];
        if (diffIds.length !== m.layers.length) throw new Error('diff_ids do not match the layers');
        const layers = m.layers.map((d, i) => ({ descriptor: d, diffId: diffIds[i] as Digest }));
        return new PartialImage(cand.toString(), desc.digest, config, layers, ep, opts);
      }, client.log);
    } finally {
      await client.close();
    }
  }

  /**
   * Fetch layers from the top until every path is settled, then apply the
   * fetched ones (bottom to top, whiteouts deleting) into a scratch directory.
   * Undefined when unsure: nothing is left behind (fetched blobs stay in the
   * store, where the full pull reuses them).
   */
  async extract(sources: string[], applyLayer: ApplyLayer): Promise<PartialExtract | undefined> {
    const paths = [...new Set(sources.map(sourcePath))];
    const { openRegistryClient } = await import('../registry/index.js');
    const { fetchBlob } = await import('../registry/fetch-blob.js');
    const { store, signal } = this.opts;
    let pending = paths;
    let lowest = this.layers.length;
    const client: RegistryClient = await openRegistryClient({ insecureRegistries: this.opts.insecureRegistries });
    try {
      while (pending.length > 0 && lowest > 0) {
        const layer = this.layers[--lowest]!;
        await fetchBlob(client, this.endpoint, layer.descriptor, store, { what: `layer ${lowest + 1} of "${this.ref}"`, ...(signal ? { signal } : {}) });
        const listing = await listLayer(store, layer.descriptor, pending);
        if (!listing) return undefined;
        const next: string[] = [];
        for (const p of pending) {
          const v = judge(listing, p);
          if (v === 'unsure') return undefined;
          if (v === 'none') next.push(p);
        }
        pending = next;
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      return undefined; // a fetch or listing failed: the full path retries and reports it
    } finally {
      await client.close();
    }
    const dir = await mkdtemp(posix.join(tmpdir(), 'kiln-copy-from-'));
    const release = () => rm(dir, { recursive: true, force: true });
    try {
      for (let i = lowest; i < this.layers.length; i++) {
        const d = this.layers[i]!.descriptor;
        await applyLayer({ store, digest: d.digest, size: d.size }, dir, { mediaType: d.mediaType, whiteoutMode: 'delete' });
      }
    } catch {
      await release();
      return undefined; // e.g. a hard link to a lower layer's file: the full path decides
    }
    const used = this.layers.slice(lowest);
    return {
      dir,
      release,
      layersFetched: used.length,
      layersTotal: this.layers.length,
      bytesUsed: used.reduce((n, l) => n + l.descriptor.size, 0),
      bytesTotal: this.layers.reduce((n, l) => n + l.descriptor.size, 0),
    };
  }
}
