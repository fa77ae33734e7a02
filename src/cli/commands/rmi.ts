import { NotFoundError, UsageError } from '../../errors.js';
import { parseDockerRef } from '../../oci/reference.js';
import type { Command } from '../command.js';
import { storeFor } from './registry-options.js';

export const rmiCommand: Command = {
  name: 'rmi',
  summary: 'Remove image names from the local store (blobs are freed by "kiln prune")',
  usage: 'rmi NAME...',
  flags: [],
  async run(args, io) {
    if (args.positionals.length === 0) throw new UsageError('"kiln rmi" needs at least one NAME', { hint: 'Usage: kiln rmi NAME...' });
    const store = storeFor(io);
    let missing: string | undefined;
    for (const p of args.positionals) {
      const name = parseDockerRef(p).toString();
      if (await store.deleteTag(name)) io.stdout.write(`Untagged: ${name}\n`);
      else missing ??= name;
    }
    if (missing) throw new NotFoundError(`Cannot remove "${missing}": no such image in the local store`, { hint: 'Run "kiln images" to list local images.' });
    return 0;
  },
};
