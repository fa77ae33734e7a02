import { parseManifestDocument, readImage, selectManifest } from '../../image/index.js';
import { hostPlatform } from '../../oci/platform.js';
import { parseDockerRef } from '../../oci/reference.js';
import { DigestMismatchError } from '../../errors.js';
import { sha256Digest } from '../../oci/digest.js';
import { type Command, flagBool } from '../command.js';
import { clientFor, onePositional, PLATFORM_FLAG, platformFrom, REGISTRY_FLAGS, storeFor } from './registry-options.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Print an image\'s manifest and config as JSON (local store, else the registry)',
  usage: 'inspect [--remote] [--platform P] REF',
  flags: [{ name: 'remote', type: 'boolean', description: 'Ask the registry even when the image is in the local store' }, PLATFORM_FLAG, ...REGISTRY_FLAGS],
  async run(args, io) {
    const ref = parseDockerRef(onePositional(args, 'inspect', 'REF'));
    const platform = platformFrom(args) ?? hostPlatform();
    const store = storeFor(io);
    const local = flagBool(args, 'remote') ? undefined : await store.getTag(ref.toString());
    if (local) {
      const img = await readImage(store, local, platform);
      io.stdout.write(JSON.stringify({ name: ref.toString(), source: 'local', digest: local.digest, mediaType: local.mediaType, ...(img.index ? { index: img.index.index } : {}), manifestDigest: img.descriptor.digest, manifest: img.manifest, config: img.config }, null, 2) + '\n');
      return 0;
    }
    const client = await clientFor(args, io);
    try {
      const ep = client.endpoints(ref).at(-1)!;
      const top = await client.getManifest(ep, ref.manifestReference);
      let doc = parseManifestDocument(top.raw, top.descriptor.mediaType);
      const out: Record<string, unknown> = { name: ref.toString(), source: 'registry', digest: top.descriptor.digest, mediaType: doc.mediaType };
      if (doc.kind === 'index') {
        out.index = doc.index;
        const child = selectManifest(doc.index, platform, `"${ref}"`);
        doc = parseManifestDocument((await client.getManifest(ep, child.digest)).raw, child.mediaType);
        out.manifestDigest = child.digest;
      } else out.manifestDigest = top.descriptor.digest;
      if (doc.kind !== 'manifest') throw new Error('nested index');
      out.manifest = doc.manifest;
      const res = await client.getBlob(ep, doc.manifest.config.digest);
      const raw = Buffer.from(await res.body.arrayBuffer());
      if (sha256Digest(raw) !== doc.manifest.config.digest) throw new DigestMismatchError(doc.manifest.config.digest, sha256Digest(raw), raw.length, { what: `config of "${ref}"` });
      out.config = JSON.parse(raw.toString('utf8'));
      io.stdout.write(JSON.stringify(out, null, 2) + '\n');
      return 0;
    } finally {
      await client.close();
    }
  },
};
