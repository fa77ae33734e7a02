import type { ContentStore } from '../content/types.js';
import { KilnError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Manifest } from '../oci/manifest.js';
import { MediaType, layerCompression, layerMediaType } from '../oci/media-types.js';
import type { ImageState } from './image-state.js';

export interface FinalizeOptions {
  /** OCI media types (default) or Docker schema2. */
  oci: boolean;
  /** --label values, applied over the Dockerfile's. */
  labels?: Record<string, string>;
  /** Manifest annotations (--annotation). */
  annotations?: Record<string, string>;
  /** ISO time for `created` and history entries without one (SOURCE_DATE_EPOCH or now). */
  created: string;
  /** Use `created` as is (SOURCE_DATE_EPOCH). */
  fixedTime?: boolean;
}

export interface FinalImage {
  manifest: Descriptor;
  config: Descriptor;
  manifestBytes: Buffer;
  configBytes: Buffer;
  layers: Descriptor[];
}

/** Write the image config and manifest of a final state into the store; returns the manifest descriptor. */
export async function finalizeImage(store: ContentStore, state: ImageState, opts: FinalizeOptions): Promise<FinalImage> {
  const config = JSON.parse(JSON.stringify(state.config)) as ImageState['config'];
  if (opts.labels && Object.keys(opts.labels).length) {
    config.config ??= {};
    config.config.Labels = { ...(config.config.Labels ?? {}), ...opts.labels };
  }
  // Metadata-only entries take the time of the step before them, so a fully
  // cached rebuild writes the same config (and image ID) as the build it reuses.
  let carry: string | undefined;
  for (const h of config.history ?? []) {
    h.created ??= carry ?? opts.created;
    carry = h.created;
  }
  config.created = opts.fixedTime ? opts.created : (carry ?? opts.created);
  config.rootfs = { type: 'layers', diff_ids: state.layers.map((l) => l.diffId) };
  const ordered = orderConfig(config);
  const configBytes = Buffer.from(JSON.stringify(ordered));
  const configInfo = await store.write(configBytes);
  const configDesc: Descriptor = { mediaType: opts.oci ? MediaType.OciConfig : MediaType.DockerConfig, digest: configInfo.digest, size: configInfo.size };
  const layers = state.layers.map((l) => convertLayer(l.descriptor, opts.oci));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: opts.oci ? MediaType.OciManifest : MediaType.DockerManifest,
    config: configDesc,
    layers,
  };
  if (opts.annotations && Object.keys(opts.annotations).length) {
    if (!opts.oci) throw new KilnError('BUILD_OPTION', 'Cannot add annotations to a Docker schema2 manifest', { hint: 'Drop --oci-mediatypes=false or the --annotation flags.' });
    manifest.annotations = { ...opts.annotations };
  }
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const mInfo = await store.write(manifestBytes);
  const desc: Descriptor = { mediaType: manifest.mediaType!, digest: mInfo.digest, size: mInfo.size };
  return { manifest: desc, config: configDesc, manifestBytes, configBytes, layers };
}

function convertLayer(d: Descriptor, oci: boolean): Descriptor {
  const c = layerCompression(d.mediaType);
  if (!oci && c !== 'gzip') {
    throw new KilnError('BUILD_OPTION', `Cannot write a Docker schema2 image with a ${c === 'none' ? 'uncompressed' : c} layer "${d.digest}"`, {
      hint: 'Docker schema2 layers are gzip: use --compression gzip, or keep OCI media types.',
    });
  }
  const out: Descriptor = { mediaType: layerMediaType(c, oci), digest: d.digest, size: d.size };
  if (d.annotations) out.annotations = d.annotations;
  return out;
}

/** Key order as BuildKit writes configs (created, architecture, os, config, rootfs, history). */
function orderConfig(c: ImageState['config']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (c.created !== undefined) out.created = c.created;
  if (c.author !== undefined) out.author = c.author;
  out.architecture = c.architecture;
  out.os = c.os;
  if (c['os.version'] !== undefined) out['os.version'] = c['os.version'];
  if (c.variant !== undefined) out.variant = c.variant;
  out.config = c.config ?? {};
  out.rootfs = c.rootfs;
  if (c.history) out.history = c.history;
  for (const [k, v] of Object.entries(c)) if (!(k in out)) out[k] = v;
  return out;
}
