/**
 * Parse-tree nodes → typed instructions, with BuildKit's validation and error
 * texts. Every flag an instruction takes becomes a typed field; any other flag
 * is refused. Words are kept raw (quotes, `$VAR`): the build engine expands
 * them with the shell lexer, in the scope it alone knows.
 */
import { DockerfileError, type SourceRange } from '../errors.js';
import { suggest } from '../util/suggest.js';
import { parseGoDuration } from './duration.js';
import { FlagError, type FlagKind, type FlagValues, parseFlags } from './flags.js';
import { chompHeredoc, mustParseHeredocMarker } from './heredoc.js';
import { type Mount, MountError, parseMountSpec } from './mount.js';
import type { DockerfileNode } from './parser.js';
import { trimSpace } from './text.js';

export type { Mount } from './mount.js';

export const INSTRUCTIONS = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK',
  'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
] as const;
export type InstructionKind = (typeof INSTRUCTIONS)[number];

interface Base {
  /** 1-based physical lines, heredoc bodies included. */
  range: SourceRange;
  /** The logical line as written (continuations joined). */
  original: string;
  /** Flags given, by name (BuildKit's FlagsUsed). */
  flagsUsed: string[];
}

/** A command line: exec form (JSON) or shell form (run through the SHELL). */
export interface CommandLine {
  /** true for shell form: args is one string for `SHELL … -c`. */
  prependShell: boolean;
  args: string[];
}

export interface KeyValue {
  key: string;
  /** Raw value (quotes and `$VAR` kept). */
  value: string;
  /** Legacy `ENV KEY value` form (no "="). */
  noDelim: boolean;
}

/** A heredoc given as a COPY/ADD source. */
export interface SourceContent {
  /** The heredoc name, used as the file name. */
  path: string;
  /** Body, chomped already when `<<-` was used. */
  data: string;
  /** Expand `$VAR` in the body (the marker was not quoted). */
  expand: boolean;
}

/** A RUN heredoc: a file for the shell (or the command itself). */
export interface InlineFile {
  name: string;
  /** Raw body, NOT chomped (see `chomp`). */
  data: string;
  chomp: boolean;
  expand: boolean;
  fileDescriptor: number;
}

export interface FromInstruction extends Base {
  kind: 'FROM';
  /** The image (or stage) reference as written. */
  image: string;
  /** Stage name, lower-cased (`AS name`). */
  name?: string;
  platform?: string;
  /** Comment above the FROM that starts with the stage name, name removed. */
  docComment: string;
}

export interface RunInstruction extends Base {
  kind: 'RUN';
  command: CommandLine;
  mounts: Mount[];
  /** Raw --mount values, for re-parsing after expansion. */
  mountSpecs: string[];
  network?: 'default' | 'none' | 'host';
  security?: 'sandbox' | 'insecure';
  files: InlineFile[];
}

export interface CmdInstruction extends Base {
  kind: 'CMD';
  command: CommandLine;
}

export interface EntrypointInstruction extends Base {
  kind: 'ENTRYPOINT';
  command: CommandLine;
}

export interface LabelInstruction extends Base {
  kind: 'LABEL';
  labels: KeyValue[];
}

export interface MaintainerInstruction extends Base {
  kind: 'MAINTAINER';
  maintainer: string;
}

export interface ExposeInstruction extends Base {
  kind: 'EXPOSE';
  ports: string[];
}

export interface EnvInstruction extends Base {
  kind: 'ENV';
  env: KeyValue[];
}

interface CopyLike extends Base {
  /** Ordinary sources as written. */
  sources: string[];
  /** Heredoc sources. */
  contents: SourceContent[];
  dest: string;
  /** Arguments were given as a JSON array. */
  json: boolean;
  chown?: string;
  chmod?: string;
  link: boolean;
  exclude: string[];
}

export interface AddInstruction extends CopyLike {
  kind: 'ADD';
  keepGitDir?: boolean;
  checksum?: string;
  unpack?: boolean;
}

export interface CopyInstruction extends CopyLike {
  kind: 'COPY';
  from?: string;
  parents: boolean;
}

export interface VolumeInstruction extends Base {
  kind: 'VOLUME';
  volumes: string[];
}

export interface UserInstruction extends Base {
  kind: 'USER';
  user: string;
}

export interface WorkdirInstruction extends Base {
  kind: 'WORKDIR';
  path: string;
}

export interface ArgDeclaration {
  key: string;
  /** Raw default value; undefined when declared without "=". */
  value?: string;
  docComment: string;
}

export interface ArgInstruction extends Base {
  kind: 'ARG';
  args: ArgDeclaration[];
}

export interface OnbuildInstruction extends Base {
  kind: 'ONBUILD';
  /** The trigger as Dockerfile text (heredoc bodies appended), stored in the image config. */
  expression: string;
  /** The trigger's keyword, upper-cased. */
  trigger: string;
}

export interface StopsignalInstruction extends Base {
  kind: 'STOPSIGNAL';
  signal: string;
}

export interface HealthConfig {
  /** ["NONE"], ["CMD", …args] or ["CMD-SHELL", command]. */
  test: string[];
  /** Nanoseconds; 0 = inherit/default. */
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

export interface HealthcheckInstruction extends Base {
  kind: 'HEALTHCHECK';
  health: HealthConfig;
}

export interface ShellInstruction extends Base {
  kind: 'SHELL';
  shell: string[];
}

export type Instruction =
  | FromInstruction | RunInstruction | CmdInstruction | EntrypointInstruction | LabelInstruction
  | MaintainerInstruction | ExposeInstruction | EnvInstruction | AddInstruction | CopyInstruction
  | VolumeInstruction | UserInstruction | WorkdirInstruction | ArgInstruction | OnbuildInstruction
  | StopsignalInstruction | HealthcheckInstruction | ShellInstruction;

/** A validation failure, located by parseInstruction. */
class InstructionError extends Error {}

const fail = (msg: string): never => {
  throw new InstructionError(msg);
};

/** Turn one parse-tree node into a typed instruction. Throws DockerfileError. */
export function parseInstruction(node: DockerfileNode, file = 'Dockerfile'): Instruction {
  const upper = node.keyword.toUpperCase();
  try {
    return build(node, upper);
  } catch (e) {
    if (e instanceof InstructionError || e instanceof FlagError || e instanceof MountError) {
      throw new DockerfileError(e.message, { file, range: node.range, instruction: upper });
    }
    throw e;
  }
}

function unknownInstruction(keyword: string): string {
  const lower = keyword === keyword.toLowerCase();
  const s = suggest(keyword, INSTRUCTIONS);
  const hint = s ? ` (did you mean ${JSON.stringify(lower ? s.toLowerCase() : s)}?)` : '';
  return `unknown instruction: ${keyword}${hint}`;
}

function flags(node: DockerfileNode, declared: Readonly<Record<string, FlagKind>> = {}): FlagValues {
  return parseFlags(node.flags, declared);
}

function base(node: DockerfileNode, f: FlagValues): Base {
  return { range: { ...node.range }, original: node.original, flagsUsed: f.used };
}

const exactlyOne = (name: string) => `${name} requires exactly one argument`;
const atLeastOne = (name: string) => `${name} requires at least one argument`;

/** Arguments for shell-dependent commands: exec form as is, shell form joined into one string. */
function commandLine(node: DockerfileNode, args = node.args): CommandLine {
  if (node.json) return { prependShell: false, args: [...args] };
  return { prependShell: true, args: args.length === 0 ? [] : [args.join(' ')] };
}

function keyValues(args: string[], name: string): KeyValue[] {
  if (args.length === 0) fail(atLeastOne(name));
  if (args.length % 3 !== 0) fail(`${name} has too many arguments`);
  const out: KeyValue[] = [];
  for (let i = 0; i < args.length; i += 3) {
    if (args[i] === '') fail(`${name} names can not be blank`);
    out.push({ key: args[i]!, value: args[i + 1]!, noDelim: args[i + 2] === '' });
  }
  return out;
}

/** Doc comment: a comment line starting with `name ` documents name. */
export function docComment(comments: readonly string[], name: string | undefined): string {
  if (!name) return '';
  for (const line of comments) {
    if (line.startsWith(name + ' ')) return line.slice(name.length + 1);
  }
  return '';
}

function build(node: DockerfileNode, upper: string): Instruction {
  const args = node.args;
  switch (upper) {
    case 'FROM': {
      const f = flags(node, { platform: 'string' });
      let name: string | undefined;
      if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
        name = args[2]!.toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) fail(`invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
      } else if (args.length !== 1) {
        fail('FROM requires either one or three arguments');
      }
      const platform = f.string('platform');
      return {
        kind: 'FROM', ...base(node, f), image: args[0]!, ...(name ? { name } : {}),
        ...(platform !== undefined && platform !== '' ? { platform } : {}),
        docComment: docComment(node.comments, name),
      };
    }
    case 'RUN': {
      const f = flags(node, { mount: 'strings', network: 'string', security: 'string' });
      const mountSpecs = f.strings('mount');
      const mounts = mountSpecs.map((s) => parseMountSpec(s));
      const net = f.string('network');
      if (net !== undefined && net !== 'default' && net !== 'none' && net !== 'host') fail(`invalid network mode ${JSON.stringify(net)}`);
      const sec = f.string('security');
      if (sec !== undefined && sec !== 'sandbox' && sec !== 'insecure') fail(`security ${JSON.stringify(sec)} is not valid`);
      const files = node.heredocs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp, expand: h.expand, fileDescriptor: h.fileDescriptor }));
      return {
        kind: 'RUN', ...base(node, f), command: commandLine(node), mounts, mountSpecs,
        ...(net !== undefined ? { network: net as RunInstruction['network'] } : {}),
        ...(sec !== undefined ? { security: sec as RunInstruction['security'] } : {}),
        files,
      };
    }
    case 'CMD': {
      const f = flags(node);
      return { kind: 'CMD', ...base(node, f), command: commandLine(node) };
    }
    case 'ENTRYPOINT': {
      const f = flags(node);
      return { kind: 'ENTRYPOINT', ...base(node, f), command: commandLine(node) };
    }
    case 'LABEL': {
      const f = flags(node);
      return { kind: 'LABEL', ...base(node, f), labels: keyValues(args, 'LABEL') };
    }
    case 'ENV': {
      const f = flags(node);
      return { kind: 'ENV', ...base(node, f), env: keyValues(args, 'ENV') };
    }
    case 'MAINTAINER': {
      if (args.length !== 1) fail(exactlyOne('MAINTAINER'));
      const f = flags(node);
      return { kind: 'MAINTAINER', ...base(node, f), maintainer: args[0]! };
    }
    case 'EXPOSE': {
      if (args.length === 0) fail(atLeastOne('EXPOSE'));
      const f = flags(node);
      // BuildKit sorts the ports (byte order).
      return { kind: 'EXPOSE', ...base(node, f), ports: [...args].sort() };
    }
    case 'ADD':
    case 'COPY': {
      if (args.length < 2) fail(`${upper} requires at least two arguments, but only one was provided. Destination could not be determined`);
      const f =
        upper === 'ADD'
          ? flags(node, { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', exclude: 'strings', unpack: 'bool' })
          : flags(node, { chown: 'string', chmod: 'string', link: 'bool', from: 'string', parents: 'bool', exclude: 'strings' });
      const srcs = args.slice(0, -1);
      const dest = args[args.length - 1]!;
      const sources: string[] = [];
      const contents: SourceContent[] = [];
      if (!node.json) {
        if (mustParseHeredocMarker(dest)) fail(`${upper} cannot accept a heredoc as a destination`);
        const byName = new Map(node.heredocs.map((h) => [h.name, h]));
        for (const src of srcs) {
          const marker = mustParseHeredocMarker(src);
          if (marker) {
            const body = byName.get(marker.name)?.content ?? '';
            contents.push({ path: marker.name, data: marker.chomp ? chompHeredoc(body) : body, expand: marker.expand });
          } else {
            sources.push(src);
          }
        }
      } else {
        sources.push(...srcs);
      }
      const common = {
        ...base(node, f), sources, contents, dest, json: node.json,
        ...opt('chown', f.string('chown')), ...opt('chmod', f.string('chmod')),
        link: f.bool('link') ?? false, exclude: f.strings('exclude'),
      };
      if (upper === 'ADD') {
        return {
          kind: 'ADD', ...common, ...opt('keepGitDir', f.bool('keep-git-dir')), ...opt('checksum', f.string('checksum')),
          ...opt('unpack', f.bool('unpack')),
        };
      }
      return { kind: 'COPY', ...common, ...opt('from', f.string('from')), parents: f.bool('parents') ?? false };
    }
    case 'VOLUME': {
      if (args.length === 0) fail(atLeastOne('VOLUME'));
      const f = flags(node);
      const volumes = args.map((v) => trimSpace(v));
      if (volumes.some((v) => v === '')) fail('VOLUME specified can not be an empty string');
      return { kind: 'VOLUME', ...base(node, f), volumes };
    }
    case 'USER': {
      if (args.length !== 1) fail(exactlyOne('USER'));
      const f = flags(node);
      return { kind: 'USER', ...base(node, f), user: args[0]! };
    }
    case 'WORKDIR': {
      if (args.length !== 1) fail(exactlyOne('WORKDIR'));
      const f = flags(node);
      return { kind: 'WORKDIR', ...base(node, f), path: args[0]! };
    }
    case 'ARG': {
      if (args.length === 0) fail(atLeastOne('ARG'));
      const f = flags(node);
      const decls: ArgDeclaration[] = args.map((word) => {
        const eq = word.indexOf('=');
        const key = eq === -1 ? word : word.slice(0, eq);
        if (key === '') fail('ARG names can not be blank');
        return { key, ...(eq === -1 ? {} : { value: word.slice(eq + 1) }), docComment: docComment(node.comments, key) };
      });
      return { kind: 'ARG', ...base(node, f), args: decls };
    }
    case 'ONBUILD': {
      if (!node.onbuild) fail(atLeastOne('ONBUILD'));
      const f = flags(node);
      const trigger = node.onbuild!.keyword.toUpperCase();
      if (trigger === 'ONBUILD') fail('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (trigger === 'MAINTAINER' || trigger === 'FROM') fail(`${trigger} isn't allowed as an ONBUILD trigger`);
      let expression = node.original.replace(/^[\t\n\f\r ]*onbuild[\t\n\f\r ]*/i, '');
      for (const h of node.heredocs) expression += '\n' + h.content + h.name;
      return { kind: 'ONBUILD', ...base(node, f), expression, trigger };
    }
    case 'STOPSIGNAL': {
      if (args.length !== 1) fail(exactlyOne('STOPSIGNAL'));
      const f = flags(node);
      return { kind: 'STOPSIGNAL', ...base(node, f), signal: args[0]! };
    }
    case 'HEALTHCHECK':
      return healthcheck(node);
    case 'SHELL': {
      const f = flags(node);
      if (args.length === 0) fail(atLeastOne('SHELL'));
      if (!node.json) fail(`SHELL requires the arguments to be in JSON form`);
      return { kind: 'SHELL', ...base(node, f), shell: [...args] };
    }
    default:
      return fail(unknownInstruction(node.keyword));
  }
}

/** An optional field; an empty string value counts as not given (as in BuildKit). */
function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined || value === '' ? {} : { [key]: value }) as { [P in K]?: V };
}

const MIN_DURATION_NS = 1e6;

function interval(f: FlagValues, name: string): number {
  const v = f.string(name);
  if (v === undefined || v === '') return 0;
  let d: number;
  try {
    d = parseGoDuration(v);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (d !== 0 && d < MIN_DURATION_NS) fail(`Interval ${JSON.stringify(name)} cannot be less than 1ms`);
  return d;
}

function healthcheck(node: DockerfileNode): HealthcheckInstruction {
  const args = node.args;
  if (args.length === 0) fail(atLeastOne('HEALTHCHECK'));
  const typ = args[0]!.toUpperCase();
  const rest = args.slice(1);
  if (typ === 'NONE') {
    if (rest.length !== 0) fail('HEALTHCHECK NONE takes no arguments');
    // BuildKit ignores flags here; kiln refuses them rather than drop them silently.
    if (node.flags.length !== 0) fail('HEALTHCHECK NONE takes no flags');
    const f = flags(node);
    return { kind: 'HEALTHCHECK', ...base(node, f), health: { test: ['NONE'], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 } };
  }
  const f = flags(node, { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' });
  if (typ !== 'CMD') fail(`Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`);
  const cmd = commandLine(node, rest);
  if (cmd.args.length === 0) fail('Missing command after HEALTHCHECK CMD');
  const test = [node.json ? 'CMD' : 'CMD-SHELL', ...cmd.args];
  let retries = 0;
  const r = f.string('retries');
  if (r !== undefined && r !== '') {
    if (!/^[+-]?[0-9]+$/.test(r)) fail(`strconv.ParseInt: parsing ${JSON.stringify(r)}: invalid syntax`);
    retries = Number(r);
    if (retries > 2147483647 || retries < -2147483648) fail(`strconv.ParseInt: parsing ${JSON.stringify(r)}: value out of range`);
    if (retries < 0) fail(`--retries cannot be negative (${retries})`);
  }
  return {
    kind: 'HEALTHCHECK', ...base(node, f),
    health: {
      test,
      interval: interval(f, 'interval'),
      timeout: interval(f, 'timeout'),
      startPeriod: interval(f, 'start-period'),
      startInterval: interval(f, 'start-interval'),
      retries,
    },
  };
}
