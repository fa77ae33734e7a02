/**
 * Instruction flags (`--name=value` before the arguments), with BuildKit's
 * rules: each flag an instruction accepts is declared with a type; any other
 * flag, a repeated single-valued flag, a missing value or a bad boolean is an
 * error. Nothing is accepted and ignored.
 */
import { suggest } from '../util/suggest.js';

export type FlagKind = 'bool' | 'string' | 'strings';

export class FlagError extends Error {}

export interface FlagValues {
  /** Flags given, by name, in first-seen order. */
  used: string[];
  bool(name: string): boolean | undefined;
  string(name: string): string | undefined;
  strings(name: string): string[];
}

/** Parse the raw flag words of one instruction against its declared flags. */
export function parseFlags(words: readonly string[], declared: Readonly<Record<string, FlagKind>>): FlagValues {
  const bools = new Map<string, boolean>();
  const strs = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const used: string[] = [];
  for (const word of words) {
    if (!word.startsWith('--')) throw new FlagError(`arg should start with -- : ${word}`);
    if (word === '--') break;
    const body = word.slice(2);
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const value = eq === -1 ? '' : body.slice(eq + 1);
    const kind = Object.prototype.hasOwnProperty.call(declared, name) ? declared[name] : undefined;
    if (kind === undefined) {
      const s = suggest(name, Object.keys(declared));
      throw new FlagError(`unknown flag: --${name}${s ? ` (did you mean --${s}?)` : ''}`);
    }
    if (used.includes(name) && kind !== 'strings') throw new FlagError(`duplicate flag specified: --${name}`);
    if (!used.includes(name)) used.push(name);
    switch (kind) {
      case 'bool': {
        if (eq !== -1 && value === '') throw new FlagError(`missing a value on flag: --${name}`);
        const lower = value.toLowerCase();
        if (lower === '' || lower === 'true') bools.set(name, true);
        else if (lower === 'false') bools.set(name, false);
        else throw new FlagError(`expecting boolean value for flag --${name}, not: ${value}`);
        break;
      }
      case 'string':
        if (eq === -1) throw new FlagError(`missing a value on flag: --${name}`);
        strs.set(name, value);
        break;
      case 'strings':
        if (eq === -1) throw new FlagError(`missing a value on flag: --${name}`);
        lists.set(name, [...(lists.get(name) ?? []), value]);
        break;
    }
  }
  return {
    used,
    bool: (n) => bools.get(n),
    string: (n) => strs.get(n),
    strings: (n) => lists.get(n) ?? [],
  };
}
