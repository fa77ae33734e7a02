import { UsageError } from '../../errors.js';
import { parseDockerRef } from '../../oci/reference.js';
import { type Command, flagBool, flagString } from '../command.js';
import { clientFor, REGISTRY_FLAGS } from './registry-options.js';

/** "https://host:5000/" or "host:5000" → "host:5000"; default Docker Hub. */
export function serverHost(arg: string | undefined): string {
  if (!arg) return 'docker.io';
  const h = arg.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  return h === 'index.docker.io' || h === 'registry-1.docker.io' ? 'docker.io' : h;
}

export const loginCommand: Command = {
  name: 'login',
  summary: 'Log in to a registry (saved in Docker\'s config.json)',
  usage: 'login [-u USER] [-p PASS | --password-stdin] [SERVER]',
  flags: [
    { name: 'username', short: 'u', type: 'string', value: 'USER', description: 'Username' },
    { name: 'password', short: 'p', type: 'string', value: 'PASS', description: 'Password (prefer --password-stdin)' },
    { name: 'password-stdin', type: 'boolean', description: 'Read the password from standard input' },
    ...REGISTRY_FLAGS,
  ],
  async run(args, io) {
    if (args.positionals.length > 1) throw new UsageError('"kiln login" takes at most one SERVER');
    const host = serverHost(args.positionals[0]);
    const username = flagString(args, 'username');
    let password = flagString(args, 'password');
    if (flagBool(args, 'password-stdin')) {
      if (password !== undefined) throw new UsageError('"--password" and "--password-stdin" are mutually exclusive');
      let s = '';
      for await (const c of io.stdin) s += c.toString();
      password = s.replace(/\r?\n$/, '');
    }
    if (!username || password === undefined || password === '') {
      throw new UsageError('Cannot log in: kiln login needs --username and a password (--password-stdin)', { hint: `Example: echo "$PASS" | kiln login -u USER --password-stdin ${host}` });
    }
    if (flagString(args, 'password') !== undefined) io.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    // Check the credentials before saving them: an authenticated GET /v2/.
    const { authKey, RegistryClient, storeCredentials } = await import('../../registry/index.js');
    const base = await clientFor(args, io);
    await base.close();
    const client = new RegistryClient({ ...base.options, registriesConf: base.conf, credentials: async () => ({ username, password }) });
    try {
      const ep = client.endpoints(parseDockerRef(`${host}/kiln-login-check`), { forPush: true }).at(-1)!;
      const res = await client.send(ep, { method: 'GET', path: '/v2/', scopes: [], expect: [200], action: `log in to "${host}" as "${username}"` });
      await res.body.dump();
      // A registry that never challenged accepts anyone: still save, as docker does.
    } finally {
      await client.close();
    }
    const path = await storeCredentials(host, { username, password }, io.env);
    io.stdout.write(`Login Succeeded (credentials for "${authKey(host)}" saved in ${path})\n`);
    return 0;
  },
};
