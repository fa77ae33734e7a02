import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../content/types.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';

/** The image an archive is written from: its manifest and what it points to. */
export interface ArchiveImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** Normalised references to record (org.opencontainers.image.ref.name / RepoTags). */
  names: string[];
}

function blobName(d: Digest): string {
  return `blobs/${d.replace(':', '/')}`;
}

/** Open the destination (a file, or stdout for "-"). */
async function destination(dest: string, stdout?: Writable): Promise<Writable> {
  if (dest === '-') {
    if (!stdout) throw new Error('no stdout for dest "-"');
    return stdout;
  }
  await mkdir(dirname(dest), { recursive: true });
  return createWriteStream(dest);
}

/**
 * Write an OCI image layout as a tar (type=oci). With `docker: true`, also a
 * manifest.json so `docker load` takes it (type=docker, as buildx writes it).
 * Blobs are streamed from the store (verified while read), each once.
 */
export async function writeImageArchive(store: ContentStore, image: ArchiveImage, dest: string, opts: { docker: boolean; stdout?: Writable }): Promise<void> {
  const { default: tarStream } = await import('tar-stream');
  const pack = tarStream.pack();
  const out = await destination(dest, opts.stdout);
  const done = pipeline(pack, out);
  const mtime = new Date(0);
  const addBuffer = (name: string, data: Buffer) =>
    new Promise<void>((resolve, reject) => pack.entry({ name, size: data.length, mode: 0o644, mtime }, data, (err) => (err ? reject(err) : resolve())));
  const addBlob = async (d: Descriptor) => {
    const src = await store.open(d.digest);
    const entry = pack.entry({ name: blobName(d.digest), size: d.size, mode: 0o644, mtime });
    await pipeline(src, entry);
  };
  try {
    await addBuffer('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    const manifestDesc: Descriptor = { ...image.manifest };
    const index: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] as Descriptor[] };
    const manifests = index.manifests as Descriptor[];
    if (image.names.length === 0) manifests.push(manifestDesc);
    for (const n of image.names) {
      manifests.push({ ...manifestDesc, annotations: { 'io.containerd.image.name': n, 'org.opencontainers.image.ref.name': refName(n) } });
    }
    await addBuffer('index.json', Buffer.from(JSON.stringify(index)));
    const seen = new Set<string>();
    for (const d of [image.config, ...image.layers, image.manifest]) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      await addBlob(d);
    }
    if (opts.docker) {
      const manifestJson = [
        {
          Config: blobName(image.config.digest),
          RepoTags: image.names.map(shortDockerName),
          Layers: image.layers.map((l) => blobName(l.digest)),
        },
      ];
      await addBuffer('manifest.json', Buffer.from(JSON.stringify(manifestJson)));
    }
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
}

/** "docker.io/library/x:1" → "1" (OCI ref.name holds the tag, as BuildKit writes it). */
function refName(name: string): string {
  const at = name.indexOf('@');
  const base = at === -1 ? name : name.slice(0, at);
  const colon = base.lastIndexOf(':');
  return colon > base.lastIndexOf('/') ? base.slice(colon + 1) : 'latest';
}

/** docker load shows familiar names: drop "docker.io/library/" and "docker.io/". */
export function shortDockerName(name: string): string {
  return name.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
}
