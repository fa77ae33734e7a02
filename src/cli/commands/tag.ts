import { NotFoundError, UsageError } from '../../errors.js';
import { parseDockerRef } from '../../oci/reference.js';
import type { Command } from '../command.js';
import { storeFor } from './registry-options.js';

export const tagCommand: Command = {
  name: 'tag',
  summary: 'Give an image in the local store another name',
  usage: 'tag SOURCE TARGET',
  flags: [],
  async run(args, io) {
    if (args.positionals.length !== 2) throw new UsageError(`"kiln tag" takes SOURCE and TARGET, got ${args.positionals.length} arguments`, { hint: 'Usage: kiln tag SOURCE TARGET' });
    const source = parseDockerRef(args.positionals[0]!).toString();
    const target = parseDockerRef(args.positionals[1]!);
    if (target.digest) throw new UsageError(`Cannot tag as "${args.positionals[1]}": a target name cannot contain a digest`);
    const store = storeFor(io);
    const desc = await store.getTag(source);
    if (!desc) throw new NotFoundError(`Cannot tag "${source}": no such image in the local store`, { hint: 'Run "kiln images" to list local images.' });
    await store.setTag(target.toString(), desc);
    return 0;
  },
};
