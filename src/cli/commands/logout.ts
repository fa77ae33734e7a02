import { UsageError } from '../../errors.js';
import type { Command } from '../command.js';
import { serverHost } from './login.js';

export const logoutCommand: Command = {
  name: 'logout',
  summary: 'Remove saved credentials for a registry',
  usage: 'logout [SERVER]',
  flags: [],
  async run(args, io) {
    if (args.positionals.length > 1) throw new UsageError('"kiln logout" takes at most one SERVER');
    const host = serverHost(args.positionals[0]);
    const { authKey, eraseCredentials } = await import('../../registry/index.js');
    const removed = await eraseCredentials(host, io.env);
    io.stdout.write(removed ? `Removing login credentials for ${authKey(host)}\n` : `Not logged in to ${authKey(host)}\n`);
    return 0;
  },
};
