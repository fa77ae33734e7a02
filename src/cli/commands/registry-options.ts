import { openContentStore, type OciLayoutStore } from '../../content/index.js';
import { UsageError } from '../../errors.js';
import { parsePlatform, type Platform } from '../../oci/platform.js';
import type { RegistryClient } from '../../registry/index.js';
import { kilnRoot } from '../../util/paths.js';
import { type CommandIO, type FlagSpec, flagBool, flagList, flagString, type ParsedArgs } from '../command.js';

/** Flags shared by the commands that talk to registries. */
export const REGISTRY_FLAGS: FlagSpec[] = [
  { name: 'insecure-registry', type: 'string[]', value: 'HOST', description: 'Allow plain HTTP or an unverified certificate for HOST (repeatable)' },
];

export const PLATFORM_FLAG: FlagSpec = { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', description: 'Platform to choose from a multi-platform image (default: this host)' };

/** The store at $KILN_ROOT (from the command's environment). */
export function storeFor(io: CommandIO): OciLayoutStore {
  return openContentStore(kilnRoot(io.env));
}

/**
 * A registry client honouring --insecure-registry and --debug (log lines to stderr; never
 * credentials). registry/ (undici, TOML) is loaded only by the commands that need it.
 */
export async function clientFor(args: ParsedArgs, io: CommandIO): Promise<RegistryClient> {
  const debug = flagBool(args, 'debug');
  const { openRegistryClient } = await import('../../registry/index.js');
  return openRegistryClient({
    env: io.env,
    insecureRegistries: flagList(args, 'insecure-registry'),
    ...(debug ? { log: (line: string) => void io.stderr.write(`DEBUG ${line}\n`) } : {}),
  });
}

export function platformFrom(args: ParsedArgs): Platform | undefined {
  const p = flagString(args, 'platform');
  return p ? parsePlatform(p) : undefined;
}

export function onePositional(args: ParsedArgs, cmd: string, what: string): string {
  if (args.positionals.length !== 1) {
    throw new UsageError(`"kiln ${cmd}" takes exactly one ${what}, got ${args.positionals.length}`, { hint: `Run "kiln ${cmd} --help".` });
  }
  return args.positionals[0]!;
}

export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${units[i]}`;
}
