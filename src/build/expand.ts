import { DockerfileError, KilnError, type SourceRange } from '../errors.js';
import { type ShellEnv, ShellExpansionError, processWordWithMatches } from '../dockerfile/shell-lexer.js';

/** Expansion of one word, with the names it read (the cache key and unused-arg check need them). */
export interface Expanded {
  value: string;
  words: string[];
  used: Set<string>;
}

export interface ExpandWhere {
  file: string;
  range: SourceRange;
  instruction: string;
  escape?: '\\' | '`';
}

/** Expand `word` as BuildKit's ProcessWord does; errors become DockerfileErrors at the instruction. */
export function expandWord(word: string, env: ShellEnv, where: ExpandWhere): Expanded {
  try {
    const r = processWordWithMatches(word, env, where.escape ? { escapeToken: where.escape } : {});
    return { value: r.result, words: r.words, used: new Set([...r.matched, ...r.unmatched]) };
  } catch (err) {
    if (err instanceof ShellExpansionError) {
      throw new DockerfileError(err.detail, { file: where.file, range: where.range, instruction: where.instruction, code: 'DOCKERFILE_EXPANSION', cause: err });
    }
    if (err instanceof KilnError) throw err;
    throw err;
  }
}
