import { UsageError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';

/**
 * A CLI command: its flags are declared so that parsing, --help and
 * "did you mean …?" come for free. A command returns an exit code; it prints
 * through `io` so tests can capture output.
 */
export type FlagType = 'boolean' | 'string' | 'string[]';

export interface FlagSpec {
  name: string; // long name without dashes, e.g. "tag"
  short?: string; // single letter, e.g. "t"
  type: FlagType;
  description: string;
  /** Shown in help, e.g. "REF". */
  value?: string;
  default?: string | boolean;
  hidden?: boolean;
}

export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export interface ParsedArgs {
  flags: FlagValues;
  positionals: string[];
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  usage: string;
  /** Extra help text after the flags. */
  details?: string;
  flags: FlagSpec[];
  /** Subcommands (e.g. "debug parse", "store verify"). */
  subcommands?: Command[];
  /** Run in kiln's build user namespace when rootless (see sandbox/userns.ts ensureBuildNamespace). */
  needsNamespace?: boolean;
  run?(args: ParsedArgs, io: CommandIO): Promise<number>;
}

export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'help', short: 'h', type: 'boolean', description: 'Show help for the command' },
  { name: 'debug', type: 'boolean', description: 'Print debug logs (credentials are never printed)' },
];

/** Parse argv for one command. Unknown flags are refused with a suggestion. */
export function parseArgs(cmd: Command, argv: string[]): ParsedArgs {
  const specs = [...cmd.flags, ...GLOBAL_FLAGS];
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const flags: FlagValues = {};
  const positionals: string[] = [];
  const set = (spec: FlagSpec, value: string | boolean) => {
    if (spec.type === 'string[]') {
      const list = (flags[spec.name] as string[] | undefined) ?? [];
      list.push(String(value));
      flags[spec.name] = list;
    } else {
      flags[spec.name] = value;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      let name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      let inline: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
      let spec = byLong.get(name);
      if (!spec && name.startsWith('no-') && byLong.get(name.slice(3))?.type === 'boolean') {
        spec = byLong.get(name.slice(3))!;
        name = spec.name;
        if (inline !== undefined) throw new UsageError(`Flag "--no-${name}" takes no value`);
        inline = 'false';
      }
      if (!spec) {
        throw new UsageError(`Unknown flag "--${name}" for "kiln ${cmd.name}"${didYouMean(name, specs.map((s) => s.name)).replace('"', '"--')}`, {
          hint: `Run "kiln ${cmd.name} --help" to see its flags.`,
        });
      }
      if (spec.type === 'boolean') {
        if (inline === undefined) set(spec, true);
        else if (inline === 'true' || inline === 'false') set(spec, inline === 'true');
        else throw new UsageError(`Flag "--${name}" takes true or false, not "${inline}"`);
      } else {
        const value = inline ?? argv[++i];
        if (value === undefined) throw new UsageError(`Flag "--${name}" needs a value${spec.value ? ` (${spec.value})` : ''}`);
        set(spec, value);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      const letters = arg.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const spec = byShort.get(letters[j]!);
        if (!spec) {
          throw new UsageError(`Unknown flag "-${letters[j]}" for "kiln ${cmd.name}"`, { hint: `Run "kiln ${cmd.name} --help" to see its flags.` });
        }
        if (spec.type === 'boolean') {
          set(spec, true);
        } else {
          const rest = letters.slice(j + 1);
          const value = rest !== '' ? rest.replace(/^=/, '') : argv[++i];
          if (value === undefined) throw new UsageError(`Flag "-${spec.short}" needs a value${spec.value ? ` (${spec.value})` : ''}`);
          set(spec, value);
          break;
        }
      }
      continue;
    }
    positionals.push(arg);
  }
  for (const s of specs) if (flags[s.name] === undefined && s.default !== undefined) flags[s.name] = s.default;
  return { flags, positionals };
}

export function formatHelp(cmd: Command, prefix = 'kiln'): string {
  const lines = [`Usage: ${prefix} ${cmd.usage}`, '', cmd.summary];
  if (cmd.subcommands?.length) {
    lines.push('', 'Commands:');
    const w = Math.max(...cmd.subcommands.map((c) => c.name.length));
    for (const c of cmd.subcommands) lines.push(`  ${c.name.padEnd(w)}  ${c.summary}`);
  }
  const visible = [...cmd.flags, ...GLOBAL_FLAGS].filter((f) => !f.hidden);
  if (visible.length) {
    lines.push('', 'Flags:');
    const left = visible.map((f) => `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.value ? ` ${f.value}` : ''}`);
    const w = Math.max(...left.map((l) => l.length));
    visible.forEach((f, i) => lines.push(`  ${left[i]!.padEnd(w)}  ${f.description}${f.default !== undefined && f.default !== false ? ` (default ${f.default})` : ''}`));
  }
  if (cmd.details) lines.push('', cmd.details);
  return lines.join('\n') + '\n';
}

/** Typed getters for flag values. */
export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === 'string' ? v : undefined;
}
export function flagBool(args: ParsedArgs, name: string): boolean {
  return args.flags[name] === true;
}
export function flagList(args: ParsedArgs, name: string): string[] {
  const v = args.flags[name];
  return Array.isArray(v) ? v : [];
}
