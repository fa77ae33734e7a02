import { readFileSync, realpathSync } from 'node:fs';
import { KilnError, UsageError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { type Command, type CommandIO, formatHelp, parseArgs } from './command.js';
import { COMMANDS } from './commands/index.js';
import { formatError } from './format-error.js';
import { ensureBuildNamespace } from '../sandbox/userns.js';

export function kilnVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const ROOT: Command = {
  name: '',
  summary: 'kiln builds OCI images from Dockerfiles: daemonless, rootless.',
  usage: '<command> [flags]',
  flags: [{ name: 'version', short: 'v', type: 'boolean', description: 'Print the version' }],
  details: 'Run "kiln <command> --help" for a command\'s flags.',
  get subcommands() {
    return COMMANDS;
  },
};

/** Find the (sub)command named by argv; returns it and the remaining args. */
function resolveCommand(argv: string[]): { cmd: Command; rest: string[]; path: string } {
  let cmd = ROOT;
  let i = 0;
  const path: string[] = [];
  while (i < argv.length && cmd.subcommands?.length && !argv[i]!.startsWith('-')) {
    const name = argv[i]!;
    const next = cmd.subcommands.find((c) => c.name === name);
    if (!next) {
      const scope = path.length ? `"kiln ${path.join(' ')}"` : 'kiln';
      throw new UsageError(`Unknown command "${name}" for ${scope}${didYouMean(name, cmd.subcommands.map((c) => c.name))}`, {
        hint: `Run "kiln ${path.length ? path.join(' ') + ' ' : ''}--help" for the list of commands.`,
      });
    }
    cmd = next;
    path.push(name);
    i++;
  }
  return { cmd, rest: argv.slice(i), path: path.join(' ') };
}

export async function main(argv: string[], io: CommandIO): Promise<number> {
  let debug = argv.includes('--debug');
  try {
    const { cmd, rest, path } = resolveCommand(argv);
    const named: Command = { ...cmd, name: path };
    const args = parseArgs(named, rest);
    debug = args.flags.debug === true;
    if (cmd === ROOT && args.flags.version) {
      io.stdout.write(`kiln ${kilnVersion()}\n`);
      return 0;
    }
    if (args.flags.help || !cmd.run) {
      io.stdout.write(formatHelp(named));
      return cmd.run || args.flags.help ? 0 : cmd === ROOT && rest.length === 0 ? 0 : 2;
    }
    if (cmd.needsNamespace) await ensureBuildNamespace(argv, { stderr: io.stderr });
    return await cmd.run(args, io);
  } catch (err) {
    io.stderr.write(formatError(err, (err as { sources?: Map<string, string> }).sources, debug));
    if (err instanceof UsageError) return 2;
    return err instanceof KilnError ? 1 : 70;
  }
}

/** Run the CLI on this process's argv and set its exit code. */
export function runCli(): void {
  const io: CommandIO = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(formatError(err));
      process.exitCode = 70;
    },
  );
}

// Run directly (node dist/src/cli/main.js); the bin, cli/kiln.js, calls runCli() itself.
if (process.argv[1] && new URL(import.meta.url).pathname === realpathSync(process.argv[1])) runCli();
