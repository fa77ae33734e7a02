import { NotFoundError, UsageError } from '../../errors.js';
import { parseDockerRef } from '../../oci/reference.js';
import { formatPlatform, type Platform, platformMatches } from '../../oci/platform.js';
import type { Command } from '../command.js';
import { clientFor, PLATFORM_FLAG, platformFrom, REGISTRY_FLAGS, storeFor } from './registry-options.js';
import { parseManifestDocument, selectManifest } from '../../image/index.js';

export const pushCommand: Command = {
  name: 'push',
  summary: 'Push an image from the local store to a registry',
  usage: 'push [--platform P] [--insecure-registry HOST] NAME [REMOTE-REF]',
  details: 'NAME is an image in the local store (see "kiln images"); REMOTE-REF defaults to NAME.\n--platform pushes only that platform\'s manifest of a multi-platform image.',
  flags: [PLATFORM_FLAG, ...REGISTRY_FLAGS],
  async run(args, io) {
    if (args.positionals.length < 1 || args.positionals.length > 2) {
      throw new UsageError(`"kiln push" takes NAME and an optional REMOTE-REF, got ${args.positionals.length} arguments`, { hint: 'Usage: kiln push NAME [REMOTE-REF]' });
    }
    const name = parseDockerRef(args.positionals[0]!).toString();
    const remote = parseDockerRef(args.positionals[1] ?? args.positionals[0]!);
    const store = storeFor(io);
    let desc = await store.getTag(name);
    if (!desc) throw new NotFoundError(`Cannot push "${name}": no such image in the local store`, { hint: 'Run "kiln images" to list local images.' });
    const platform = platformFrom(args);
    if (platform) {
      const doc = parseManifestDocument(await store.read(desc.digest), desc.mediaType);
      if (doc.kind === 'index') desc = selectManifest(doc.index, platform, `"${name}"`);
      else {
        const cfg = JSON.parse((await store.read(doc.manifest.config.digest)).toString('utf8')) as Platform;
        if (!platformMatches(platform, cfg)) throw new NotFoundError(`Cannot push "${name}" for platform "${formatPlatform(platform)}": the image is for "${formatPlatform(cfg)}"`);
      }
    }
    const client = await clientFor(args, io);
    const { pushImage } = await import('../../registry/index.js');
    try {
      const res = await pushImage(store, desc, remote, {
        client,
        onProgress: (e) => {
          if (e.kind === 'exists') io.stdout.write(`${e.digest.slice(7, 19)}: Layer already exists\n`);
          else if (e.kind === 'mounted') io.stdout.write(`${e.digest.slice(7, 19)}: Mounted from ${e.from}\n`);
          else if (e.kind === 'uploaded') io.stdout.write(`${e.digest.slice(7, 19)}: Pushed\n`);
        },
      });
      io.stdout.write(`${res.reference}@${res.descriptor.digest}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
