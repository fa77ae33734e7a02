/**
 * A parsed Dockerfile as build stages: meta ARGs (before the first FROM),
 * then one Stage per FROM with its instructions. Stage names are
 * case-insensitive (stored lower-cased); a stage is addressable by name or
 * by index. Also: the ARGs BuildKit predefines (platform and proxy args).
 *
 * Pure: variables are not expanded here. resolveMetaArgs() does the one
 * expansion that belongs to the front end (ARGs before FROM), with the lexer.
 */
import { DockerfileError, type SourceRange } from '../errors.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import { type ArgInstruction, type FromInstruction, type Instruction, parseInstruction } from './instructions.js';
import { type Directive, type ParseOptions, type ParseResult, type ParseWarning, parseDockerfile } from './parser.js';
import { ShellLexer } from './shell-lexer.js';

export interface Stage {
  /** Position among the FROMs, from 0. */
  index: number;
  /** Lower-cased `AS` name. */
  name?: string;
  from: FromInstruction;
  /** Everything after the FROM up to the next FROM. */
  instructions: Exclude<Instruction, FromInstruction>[];
  range: SourceRange;
}

export interface Dockerfile {
  file: string;
  escapeToken: '\\' | '`';
  directives: Directive[];
  warnings: ParseWarning[];
  /** ARG instructions before the first FROM: usable in FROM lines, and re-declarable in stages. */
  metaArgs: ArgInstruction[];
  stages: Stage[];
  /** The decoded text, for error excerpts. */
  source: string;
  /** The `# syntax=` directive, if any. */
  syntax?: string;
}

/** Text → typed, located stages. Throws DockerfileError (with `sources` attached for the CLI). */
export function parseStages(input: string | Uint8Array, options: ParseOptions = {}): Dockerfile {
  let parsed: ParseResult;
  try {
    parsed = parseDockerfile(input, options);
  } catch (e) {
    throw attachSource(e, options.file ?? 'Dockerfile', input);
  }
  try {
    return stagesFromParse(parsed);
  } catch (e) {
    throw attachSource(e, parsed.file, parsed.source);
  }
}

function attachSource(e: unknown, file: string, input: string | Uint8Array): unknown {
  if (e instanceof DockerfileError) {
    const text = typeof input === 'string' ? input : new TextDecoder().decode(input);
    (e as DockerfileError & { sources?: Map<string, string> }).sources = new Map([[file, text]]);
  }
  return e;
}

export function stagesFromParse(parsed: ParseResult): Dockerfile {
  const metaArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const names = new Map<string, number>();
  for (const node of parsed.nodes) {
    const ins = parseInstruction(node, parsed.file);
    if (ins.kind === 'FROM') {
      if (ins.name !== undefined) {
        if (names.has(ins.name)) {
          throw new DockerfileError(`duplicate stage name ${JSON.stringify(ins.name)}`, { file: parsed.file, range: ins.range, instruction: 'FROM' });
        }
        names.set(ins.name, stages.length);
      }
      stages.push({ index: stages.length, ...(ins.name !== undefined ? { name: ins.name } : {}), from: ins, instructions: [], range: { ...ins.range } });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) {
      if (ins.kind === 'ARG') {
        metaArgs.push(ins);
        continue;
      }
      throw new DockerfileError('no build stage in current context', { file: parsed.file, range: ins.range, instruction: ins.kind });
    }
    stage.instructions.push(ins);
    stage.range.endLine = ins.range.endLine;
  }
  if (stages.length === 0) {
    throw new DockerfileError('dockerfile contains no stages to build', { file: parsed.file, range: parsed.range });
  }
  const syntax = parsed.directives.find((d) => d.name === 'syntax')?.value;
  return {
    file: parsed.file,
    escapeToken: parsed.escapeToken,
    directives: parsed.directives,
    warnings: parsed.warnings,
    metaArgs,
    stages,
    source: parsed.source,
    ...(syntax !== undefined ? { syntax } : {}),
  };
}

/** Find a stage by (case-insensitive) name or by index ("0", "1", …). */
export function findStage(df: Pick<Dockerfile, 'stages'>, ref: string): Stage | undefined {
  const lower = ref.toLowerCase();
  const byName = df.stages.find((s) => s.name === lower);
  if (byName) return byName;
  if (/^[0-9]+$/.test(ref)) return df.stages[Number(ref)];
  return undefined;
}

/** Proxy build-args: accepted without an ARG declaration and kept out of the image history. */
export const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'] as const;

/** Names of the automatic platform ARGs. */
export const PLATFORM_ARGS = ['BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT', 'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT'] as const;

/**
 * The automatic platform ARG values. They are defined in the global scope
 * (usable in FROM); inside a stage a bare `ARG TARGETARCH` brings one in.
 */
export function platformArgs(build: Platform, target: Platform): Record<string, string> {
  return {
    BUILDPLATFORM: formatPlatform(build),
    BUILDOS: build.os,
    BUILDARCH: build.architecture,
    BUILDVARIANT: build.variant ?? '',
    TARGETPLATFORM: formatPlatform(target),
    TARGETOS: target.os,
    TARGETARCH: target.architecture,
    TARGETVARIANT: target.variant ?? '',
  };
}

export interface MetaArgScope {
  /** Values visible to FROM lines and to `ARG name` re-declarations in stages. */
  values: Map<string, string>;
  /** Build-args given but declared nowhere before the first FROM (for the unused-arg warning). */
  declared: Set<string>;
}

/**
 * Evaluate the meta ARGs in order: a build-arg overrides the default; each
 * default is expanded with the values so far (platform args included).
 * Expansion errors become DockerfileErrors on the ARG's line.
 */
export function resolveMetaArgs(
  df: Pick<Dockerfile, 'metaArgs' | 'file' | 'escapeToken'>,
  buildArgs: ReadonlyMap<string, string>,
  predefined: Readonly<Record<string, string>> = {},
): MetaArgScope {
  const values = new Map<string, string>(Object.entries(predefined));
  const declared = new Set<string>();
  const lexer = new ShellLexer({ escapeToken: df.escapeToken });
  for (const ins of df.metaArgs) {
    for (const a of ins.args) {
      declared.add(a.key);
      if (buildArgs.has(a.key)) {
        values.set(a.key, buildArgs.get(a.key)!);
      } else if (a.value !== undefined) {
        try {
          values.set(a.key, lexer.processWord(a.value, values));
        } catch (e) {
          throw new DockerfileError((e as Error).message, { file: df.file, range: ins.range, instruction: 'ARG', cause: e });
        }
      }
    }
  }
  return { values, declared };
}

/**
 * The value an `ARG` inside a stage takes (BuildKit's rule): a build-arg wins;
 * else the declared default, expanded in the stage's environment by `expand`;
 * else the value of a meta ARG of the same name (a bare `ARG NAME` re-imports
 * it, platform args included); else the ARG is declared but unset.
 */
export function stageArgValue(
  decl: { key: string; value?: string },
  buildArgs: ReadonlyMap<string, string>,
  meta: Pick<MetaArgScope, 'values'>,
  expand: (word: string) => string,
): string | undefined {
  if (buildArgs.has(decl.key)) return buildArgs.get(decl.key);
  if (decl.value !== undefined) return expand(decl.value);
  return meta.values.get(decl.key);
}
