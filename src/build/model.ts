import type { SourceRange } from '../errors.js';

/**
 * The build engine's view of a Dockerfile: stages of instructions with their
 * words NOT yet expanded (expansion happens at dispatch time, with the
 * ARG/ENV values of that point). src/build/frontend.ts fills it from the
 * parser's typed instructions.
 */
export interface HeredocSource {
  name: string;
  content: string;
  /** Unquoted marker: the builder expands variables in COPY heredocs. */
  expand: boolean;
  /** RUN heredocs: `<<-` (the body is passed raw; a simple heredoc script is chomped). */
  chomp?: boolean;
}

export interface InstrBase {
  range: SourceRange;
  /** The instruction text as written (for messages and history). */
  original: string;
}

export type Instr = InstrBase &
  (
    | { kind: 'run'; shell: boolean; cmd: string[]; heredocs: HeredocSource[]; mounts: string[]; network?: string; security?: string }
    | {
        kind: 'copy' | 'add';
        sources: string[];
        dest: string;
        heredocs: HeredocSource[];
        from?: string;
        chown?: string;
        chmod?: string;
        link: boolean;
        parents: boolean;
        excludes: string[];
        checksum?: string;
        keepGitDir?: boolean;
        unpack?: boolean;
      }
    | { kind: 'cmd' | 'entrypoint'; shell: boolean; args: string[] }
    | { kind: 'env' | 'label'; pairs: Array<[string, string]> }
    | { kind: 'arg'; args: Array<{ name: string; value?: string }> }
    | { kind: 'expose'; ports: string[] }
    | { kind: 'volume'; paths: string[] }
    | { kind: 'user'; user: string }
    | { kind: 'workdir'; path: string }
    | { kind: 'shell'; shell: string[] }
    | {
        kind: 'healthcheck';
        none: boolean;
        test: string[];
        interval?: number;
        timeout?: number;
        startPeriod?: number;
        startInterval?: number;
        retries?: number;
      }
    | { kind: 'stopsignal'; signal: string }
    | { kind: 'onbuild'; expression: string }
    | { kind: 'maintainer'; name: string }
  );

export interface StageDef {
  index: number;
  /** As written (case kept); matched case-insensitively. */
  name?: string;
  /** Base image or stage name, not yet expanded. */
  base: string;
  platform?: string;
  range: SourceRange;
  original: string;
  instructions: Instr[];
}

export interface DockerfileDef {
  file: string;
  source: string;
  /** ARG instructions before the first FROM. */
  metaArgs: Array<{ name: string; value?: string; range: SourceRange }>;
  stages: StageDef[];
  /** Parses an ONBUILD trigger expression ("RUN x") into an instruction. */
  parseTrigger(expression: string, range: SourceRange): Instr;
}
