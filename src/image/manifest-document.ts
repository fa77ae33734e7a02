import { KilnError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseDigest } from '../oci/digest.js';
import type { Index, Manifest } from '../oci/manifest.js';
import { isIndexMediaType, isManifestMediaType, MediaType } from '../oci/media-types.js';

/** A parsed manifest or index together with the exact bytes it came from. */
export type ManifestDocument =
  | { kind: 'manifest'; mediaType: string; raw: Buffer; manifest: Manifest }
  | { kind: 'index'; mediaType: string; raw: Buffer; index: Index };

function checkDescriptor(d: unknown, where: string): Descriptor {
  const x = d as Descriptor;
  if (!x || typeof x !== 'object' || typeof x.mediaType !== 'string' || typeof x.size !== 'number' || x.size < 0 || typeof x.digest !== 'string') {
    throw new KilnError('MANIFEST_INVALID', `Invalid ${where}: expected a descriptor with mediaType, digest and size`);
  }
  parseDigest(x.digest);
  return x;
}

/**
 * Parse manifest bytes. The media type is the document's own `mediaType`, else the
 * one the server sent (`contentType`), else guessed from the shape (`manifests` → index).
 * Docker schema1 is refused.
 */
export function parseManifestDocument(raw: Buffer, contentType?: string): ManifestDocument {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new KilnError('MANIFEST_INVALID', `Invalid manifest: not JSON (${(err as Error).message})`);
  }
  if (!doc || typeof doc !== 'object') throw new KilnError('MANIFEST_INVALID', 'Invalid manifest: not a JSON object');
  const ct = contentType?.split(';')[0]?.trim();
  let mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : ct && ct !== 'application/json' && ct !== 'text/plain' ? ct : Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  if (doc.schemaVersion === 1 || mediaType.includes('distribution.manifest.v1')) {
    throw new KilnError('MANIFEST_UNSUPPORTED', 'Unsupported manifest: Docker schema 1 is deprecated and not supported', {
      hint: 'Re-push the image with a current tool (docker, skopeo, kiln) to get a schema 2 or OCI manifest.',
    });
  }
  if (doc.schemaVersion !== 2) throw new KilnError('MANIFEST_INVALID', `Invalid manifest: schemaVersion ${JSON.stringify(doc.schemaVersion)}, expected 2`);
  if (isIndexMediaType(mediaType) || (!isManifestMediaType(mediaType) && Array.isArray(doc.manifests))) {
    if (!Array.isArray(doc.manifests)) throw new KilnError('MANIFEST_INVALID', 'Invalid index: no "manifests" array');
    doc.manifests.forEach((d, i) => checkDescriptor(d, `index entry ${i}`));
    if (!isIndexMediaType(mediaType)) mediaType = MediaType.OciIndex;
    return { kind: 'index', mediaType, raw, index: doc as unknown as Index };
  }
  checkDescriptor(doc.config, 'manifest config');
  if (!Array.isArray(doc.layers)) throw new KilnError('MANIFEST_INVALID', 'Invalid manifest: no "layers" array');
  doc.layers.forEach((d, i) => checkDescriptor(d, `manifest layer ${i}`));
  if (!isManifestMediaType(mediaType)) mediaType = MediaType.OciManifest;
  return { kind: 'manifest', mediaType, raw, manifest: doc as unknown as Manifest };
}
