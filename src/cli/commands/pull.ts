import { familiarString } from '../../oci/reference.js';
import { type Command, flagBool } from '../command.js';
import { clientFor, onePositional, PLATFORM_FLAG, platformFrom, REGISTRY_FLAGS, storeFor } from './registry-options.js';

export const pullCommand: Command = {
  name: 'pull',
  summary: 'Pull an image from a registry into the local store',
  usage: 'pull [--platform P] [--insecure-registry HOST] [-q] REF',
  flags: [PLATFORM_FLAG, ...REGISTRY_FLAGS, { name: 'quiet', short: 'q', type: 'boolean', description: 'Print only the image reference' }],
  details: 'Credentials come from Docker\'s config.json ($DOCKER_CONFIG); mirrors and insecure registries from registries.conf.',
  async run(args, io) {
    const ref = onePositional(args, 'pull', 'REF');
    const quiet = flagBool(args, 'quiet');
    const client = await clientFor(args, io);
    const { pullImage } = await import('../../registry/index.js');
    try {
      const platform = platformFrom(args);
      const result = await pullImage(ref, {
        store: storeFor(io),
        client,
        ...(platform ? { platform } : {}),
        onProgress: (e) => {
          if (quiet) return;
          if (e.kind === 'blob-done') io.stdout.write(`${e.digest.slice(7, 19)}: Pull complete\n`);
          if (e.kind === 'blob-cached') io.stdout.write(`${e.digest.slice(7, 19)}: Already exists\n`);
        },
      });
      if (!quiet) io.stdout.write(`Digest: ${result.top.digest}\nStatus: Downloaded ${familiarString(result.reference)}\n`);
      io.stdout.write(`${result.reference}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
