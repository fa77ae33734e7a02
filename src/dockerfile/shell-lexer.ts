/**
 * The Dockerfile shell-word lexer: quote removal, escapes and variable expansion as BuildKit's
 * shell lexer does them (no command substitution, no globbing, no arithmetic).
 *
 *   $name ${name}                         value, or "" when unset
 *   ${a:-w} ${a-w}  ${a:+w} ${a+w}        default / alternative (":" also treats "" as unset)
 *   ${a:?msg} ${a?msg}                    error when unset (":" also when empty)
 *   ${a#p} ${a##p} ${a%p} ${a%%p}         strip shortest/longest prefix/suffix glob (* ? \)
 *   ${a/p/r} ${a//p/r}                    replace first/all glob matches
 *
 * Pure: no I/O. Every lookup is recorded: `matched` holds the names that were looked up and set,
 * `unmatched` those looked up and unset (the build cache and the unused-build-arg check read these).
 */
import { KilnError } from '../errors.js';

/** Something that answers "is NAME set, and to what?". undefined = unset, "" = set but empty. */
export interface ShellEnvLookup {
  get(name: string): string | undefined;
}

/**
 * An environment: a Map or plain object (a missing key is unset), an ordered list of "K=V"
 * strings (a later entry wins; an entry without "=" sets K to ""), or a lookup object.
 */
export type ShellEnv = ReadonlyMap<string, string> | Readonly<Record<string, string>> | readonly string[] | ShellEnvLookup;

export interface ShellLexOptions {
  /** The escape character, from the `# escape=` directive. Default backslash. */
  escapeToken?: '\\' | '`';
  /** Keep quote characters in the result (quotes still group). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result (they still escape). */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters. */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written instead of expanding them to "". */
  skipUnsetEnv?: boolean;
}

export interface ProcessWordResult {
  /** The word as one string, quotes removed and variables expanded. */
  result: string;
  /** The same input split into words at unquoted whitespace (expanded values split too). */
  words: string[];
  /** Variable names looked up and found set (possibly to ""). */
  matched: Set<string>;
  /** Variable names looked up and found unset. */
  unmatched: Set<string>;
}

/** Expansion failed (bad substitution, unterminated quote, ${a?msg} on an unset variable, …). */
export class ShellExpansionError extends KilnError {
  readonly word: string;
  readonly detail: string;
  constructor(word: string, detail: string) {
    const shown = word.length > 256 ? `${word.slice(0, 256)}…` : word;
    super('DOCKERFILE_EXPANSION', `failed to process ${JSON.stringify(shown)}: ${detail}`);
    this.word = word;
    this.detail = detail;
  }
}

class Failure extends Error {}

const EOF = -1;
/** Deepest ${…} nesting accepted (each level costs a few stack frames). */
const MAX_NESTING = 1000;

/** Go's unicode.IsSpace. */
function isSpace(cp: number): boolean {
  if (cp <= 0xff) return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  return cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 || cp === 0x202f || cp === 0x205f || cp === 0x3000;
}
const isLetter = (cp: number) => /\p{L}/u.test(String.fromCodePoint(cp));
const isDigit = (cp: number) => /\p{Nd}/u.test(String.fromCodePoint(cp));
/** POSIX special parameters; never set in a Dockerfile. */
const isSpecialParam = (cp: number) => '@*#?-$!0'.includes(String.fromCodePoint(cp));
const chr = (cp: number) => String.fromCodePoint(cp);
const CP = (s: string) => s.codePointAt(0)!;

function toLookup(env: ShellEnv): ShellEnvLookup {
  if (env instanceof Map) return { get: (k) => env.get(k) };
  if (Array.isArray(env)) {
    const m = new Map<string, string>();
    for (const kv of env as readonly string[]) {
      const i = kv.indexOf('=');
      if (i === -1) m.set(kv, '');
      else m.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return { get: (k) => m.get(k) };
  }
  if (typeof (env as ShellEnvLookup).get === 'function') return env as ShellEnvLookup;
  const rec = env as Readonly<Record<string, string>>;
  return { get: (k) => (Object.hasOwn(rec, k) ? rec[k] : undefined) };
}

/** Accumulates the split-words view alongside the single-word result. */
class Words {
  word = '';
  words: string[] = [];
  inWord = false;

  addChar(cp: number): void {
    if (isSpace(cp)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else this.addRawChar(cp);
  }
  addRawChar(cp: number): void {
    this.word += chr(cp);
    this.inWord = true;
  }
  addString(s: string): void {
    for (const c of s) this.addChar(CP(c));
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  get(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

/** One expansion run over one input word. */
class ShellWord {
  private readonly cps: number[];
  private pos = 0;
  private readonly esc: number;
  private rawEscapes: boolean;
  private depth = 0;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    input: string,
    private readonly env: ShellEnvLookup,
    private readonly opts: ShellLexOptions,
  ) {
    this.cps = Array.from(input, CP);
    if (this.cps[0] === 0xfeff) this.pos = 1; // a leading byte-order mark is ignored
    this.esc = CP(opts.escapeToken ?? '\\');
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  private peek(): number {
    return this.pos < this.cps.length ? this.cps[this.pos]! : EOF;
  }
  private next(): number {
    return this.pos < this.cps.length ? this.cps[this.pos++]! : EOF;
  }

  private getEnv(name: string): [string, boolean] {
    const v = this.env.get(name);
    if (v !== undefined) {
      this.matched.add(name);
      return [v, true];
    }
    this.unmatched.add(name);
    return ['', false];
  }

  run(): [string, string[]] {
    return this.processStopOn(EOF, this.rawEscapes);
  }

  /** Read up to (and consume) stopChar, or to the end when stopChar is EOF. */
  private processStopOn(stopChar: number, rawEscapes: boolean): [string, string[]] {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = '';
      const words = new Words();
      const quotes = !this.opts.skipProcessQuotes;
      while (this.peek() !== EOF) {
        let ch = this.peek();
        if (stopChar !== EOF && ch === stopChar) {
          this.next();
          return [result, words.get()];
        }
        if (ch === 0x24 /* $ */) {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
        } else if (quotes && (ch === 0x27 || ch === 0x22)) {
          const tmp = ch === 0x27 ? this.processSingleQuote() : this.processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else {
          ch = this.next();
          if (ch === this.esc) {
            if (this.rawEscapes) {
              words.addRawChar(ch);
              result += chr(ch);
            }
            ch = this.next();
            if (ch === EOF) break; // an escape at the very end is dropped
            words.addRawChar(ch);
          } else {
            words.addChar(ch);
          }
          result += chr(ch);
        }
      }
      if (stopChar !== EOF) throw new Failure(`unexpected end of statement while looking for matching ${chr(stopChar)}`);
      return [result, words.get()];
    } finally {
      this.rawEscapes = saved;
    }
  }

  /** Everything up to the next ' is literal; ' cannot be escaped inside. */
  private processSingleQuote(): string {
    let result = '';
    let ch = this.next();
    if (this.opts.rawQuotes) result += chr(ch);
    for (;;) {
      ch = this.next();
      if (ch === EOF) throw new Failure('unexpected end of statement while looking for matching single-quote');
      if (ch === 0x27) {
        if (this.opts.rawQuotes) result += chr(ch);
        return result;
      }
      result += chr(ch);
    }
  }

  /** $ expands; the escape character escapes only " $ and itself, and is kept before anything else. */
  private processDoubleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.opts.rawQuotes) result += chr(open);
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new Failure('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) {
        const ch = this.next();
        if (this.opts.rawQuotes) result += chr(ch);
        return result;
      }
      if (p === 0x24) {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.esc) {
        if (this.rawEscapes) result += chr(ch);
        const q = this.peek();
        if (q === EOF) continue; // reported as unterminated on the next turn
        if (q === 0x22 || q === 0x24 || q === this.esc) ch = this.next();
      }
      result += chr(ch);
    }
  }

  private processDollar(): string {
    this.next(); // $
    if (this.peek() !== 0x7b /* { */) {
      const name = this.processName();
      if (name === '') return '$';
      const [value, found] = this.getEnv(name);
      if (!found && this.opts.skipUnsetEnv) return `$${name}`;
      return value;
    }
    this.next(); // {
    // Go's growable stack has no practical limit; ours does, so refuse absurd nesting cleanly.
    if (++this.depth > MAX_NESTING) throw new Failure(`syntax error: \${} nested more than ${MAX_NESTING} levels deep`);
    try {
      return this.processBraced();
    } finally {
      this.depth--;
    }
  }

  /** The part of processDollar after "${". */
  private processBraced(): string {
    const first = this.peek();
    if (first === EOF) throw new Failure("syntax error: missing '}'");
    if (first === 0x7b || first === 0x7d || first === 0x3a) throw new Failure('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let chs = ch === EOF ? '\ufffd' : chr(ch); // Go prints EOF as U+FFFD
    switch (ch) {
      case 0x7d: /* } */ {
        const [value, set] = this.getEnv(name);
        if (!set && this.opts.skipUnsetEnv) return `\${${name}}`;
        return value;
      }
      case 0x3a: /* : */
      case 0x2b: /* + */
      case 0x2d: /* - */
      case 0x3f: /* ? */
      case 0x23: /* # */
      case 0x25: /* % */ {
        const nullIsUnset = ch === 0x3a;
        if (nullIsUnset) {
          ch = this.next();
          chs += ch === EOF ? '\ufffd' : chr(ch);
        }
        const raw = ch === 0x23 || ch === 0x25;
        if (nullIsUnset && raw) throw new Failure(`unsupported modifier (${chs}) in substitution`);
        let word: string;
        try {
          [word] = this.processStopOn(0x7d, raw);
        } catch (e) {
          if (e instanceof Failure && this.peek() === EOF) throw new Failure("syntax error: missing '}'");
          throw e;
        }
        const [value, set] = this.getEnv(name);
        if (this.opts.skipUnsetEnv && !set) return `\${${name}${chs}${word}}`;
        switch (ch) {
          case 0x2d:
            return !set || (nullIsUnset && value === '') ? word : value;
          case 0x2b:
            return !set || (nullIsUnset && value === '') ? '' : word;
          case 0x3f:
            if (!set) throw new Failure(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
            if (nullIsUnset && value === '') throw new Failure(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
            return value;
          case 0x23:
          case 0x25: {
            let greedy = false;
            if (word.length > 0 && CP(word) === ch) {
              greedy = true;
              word = word.slice(1);
            }
            return ch === 0x25 ? trimSuffix(word, value, greedy) : trimPrefix(word, value, greedy);
          }
          default:
            throw new Failure(`unsupported modifier (${chs}) in substitution`);
        }
      }
      case 0x2f: /* / */ {
        const replaceAll = this.peek() === 0x2f;
        if (replaceAll) this.next();
        let pattern: string;
        let replacement: string;
        try {
          [pattern] = this.processStopOn(0x2f, true);
        } catch (e) {
          if (e instanceof Failure && this.peek() === EOF) throw new Failure("syntax error: missing '/' in ${}");
          throw e;
        }
        try {
          [replacement] = this.processStopOn(0x7d, true);
        } catch (e) {
          if (e instanceof Failure && this.peek() === EOF) throw new Failure("syntax error: missing '}'");
          throw e;
        }
        const [value, set] = this.getEnv(name);
        if (this.opts.skipUnsetEnv && !set) return `\${${name}/${pattern}/${replacement}}`;
        return replaceGlob(value, pattern, replacement, replaceAll);
      }
      default:
        throw new Failure(`unsupported modifier (${chs}) in substitution`);
    }
  }

  /** A name: letters, digits and _; or a run of digits (positional); or one special parameter. */
  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name.length === 0 && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += chr(this.next());
        return name;
      }
      if (name.length === 0 && isSpecialParam(ch)) return chr(this.next());
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f) break;
      name += chr(this.next());
    }
    return name;
  }
}

// ---- ${…} globs: `*` any run, `?` one character, `\` escapes * ? \ (and drops itself before
// } and /); everything else is literal; no bracket expressions. `*` and `?` do not match a
// newline (as Go's `.` does not). Matching is a position-set simulation, linear in
// pattern × value, with the extents a backtracking regexp engine would pick:
// shortest/longest anchored prefix, and leftmost-then-longest for replacement.

const STAR = -1;
const ANY = -2;
const NL = 0x0a;

/** Parse a glob into atoms: STAR, ANY or a literal code point. */
function parseGlob(pattern: string): number[] {
  const cps = Array.from(pattern, CP);
  const atoms: number[] = [];
  for (let i = cps[0] === 0xfeff ? 1 : 0; i < cps.length; i++) {
    const tok = cps[i]!;
    if (tok === 0x2a) atoms.push(STAR);
    else if (tok === 0x3f) atoms.push(ANY);
    else if (tok === 0x5c) {
      const nx = cps[i + 1];
      if (nx === 0x7d || nx === 0x2f) continue;
      i++;
      if (nx !== 0x2a && nx !== 0x3f && nx !== 0x5c) {
        throw new Failure(`invalid pattern (${pattern}) in substitution: invalid escape '\\${nx === undefined ? '\ufffd' : chr(nx)}'`);
      }
      atoms.push(nx);
    } else atoms.push(tok);
  }
  return atoms;
}

const INF = Number.POSITIVE_INFINITY;

/** String.fromCodePoint over an array of any length. */
function fromCps(cps: number[]): string {
  let out = '';
  for (let i = 0; i < cps.length; i += 8192) out += String.fromCodePoint(...cps.slice(i, i + 8192));
  return out;
}

/** Let STAR atoms match nothing: a thread in front of a STAR is also behind it. */
function closure(atoms: number[], starts: number[]): void {
  for (let i = 0; i < atoms.length; i++) if (atoms[i] === STAR && starts[i]! < starts[i + 1]!) starts[i + 1] = starts[i]!;
}

/** Advance every thread over one code point. */
function step(atoms: number[], starts: number[], c: number): number[] {
  const next = new Array<number>(atoms.length + 1).fill(INF);
  for (let i = 0; i < atoms.length; i++) {
    const s = starts[i]!;
    if (s === INF) continue;
    const a = atoms[i]!;
    if (a === STAR) {
      if (c !== NL && s < next[i]!) next[i] = s;
    } else if (a === ANY ? c !== NL : a === c) {
      if (s < next[i + 1]!) next[i + 1] = s;
    }
  }
  return next;
}

/** End offsets at which the glob matches value[from:end], shortest or longest; undefined if none. */
function anchoredMatchEnd(atoms: number[], value: number[], from: number, longest: boolean): number | undefined {
  let starts = new Array<number>(atoms.length + 1).fill(INF);
  starts[0] = from;
  let found: number | undefined;
  for (let pos = from; ; pos++) {
    closure(atoms, starts);
    if (starts[atoms.length] !== INF) {
      found = pos;
      if (!longest) return found;
    }
    if (pos === value.length || starts.every((x) => x === INF)) return found;
    starts = step(atoms, starts, value[pos]!);
  }
}

/** The leftmost match at or after `from`, longest at that start: [start, end] or undefined. */
function leftmostLongest(atoms: number[], value: number[], from: number): [number, number] | undefined {
  let starts = new Array<number>(atoms.length + 1).fill(INF);
  let best: [number, number] | undefined;
  for (let pos = from; ; pos++) {
    if (!best && pos < starts[0]!) starts[0] = pos;
    closure(atoms, starts);
    const s = starts[atoms.length]!;
    if (s !== INF && (!best || s < best[0] || (s === best[0] && pos > best[1]))) best = [s, pos];
    if (best) for (let i = 0; i < starts.length; i++) if (starts[i]! > best[0]) starts[i] = INF;
    if (pos === value.length || (best && starts.every((x) => x === INF))) return best;
    starts = step(atoms, starts, value[pos]!);
  }
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const cps = Array.from(value, CP);
  const end = anchoredMatchEnd(parseGlob(pattern), cps, 0, greedy);
  return end === undefined ? value : fromCps(cps.slice(end));
}

/** Reverse a glob, keeping each escape before the character it escapes. */
function reversePattern(pattern: string): string {
  const p = Array.from(pattern);
  const out: string[] = new Array(p.length);
  const last = p.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = p[i]!;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = p[i + 1]!;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join('');
}

const reverseString = (s: string) => Array.from(s).reverse().join('');

/** Shortest/longest rightmost match = shortest/longest leftmost match on the reversed pattern and value. */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

/** Go regexp template expansion: $$ → $, $0/${0} → the match, other $name → "" (no groups). */
function expandTemplate(template: string, match: string): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '$' || i + 1 >= template.length) {
      out += c;
      continue;
    }
    if (template[i + 1] === '$') {
      out += '$';
      i++;
      continue;
    }
    const m = template[i + 1] === '{' ? /^\{([A-Za-z0-9_]+)\}/.exec(template.slice(i + 1)) : /^([A-Za-z0-9_]+)/.exec(template.slice(i + 1));
    if (!m) {
      out += '$';
      continue;
    }
    if (/^[0-9]+$/.test(m[1]!) && Number(m[1]) === 0) out += match;
    i += m[0].length;
  }
  return out;
}

/** ${v/p/r} and ${v//p/r}: Go's ReplaceAllString rules (an empty match right after a match is skipped). */
function replaceGlob(value: string, pattern: string, replacement: string, all: boolean): string {
  const atoms = parseGlob(pattern);
  const cps = Array.from(value, CP);
  const text = (a: number, b: number) => fromCps(cps.slice(a, b));
  let out = '';
  let lastEnd = 0;
  let search = 0;
  while (search <= cps.length) {
    const m = leftmostLongest(atoms, cps, search);
    if (!m) break;
    const [start, end] = m;
    out += text(lastEnd, start);
    if (end > lastEnd || start === 0) out += expandTemplate(replacement, text(start, end));
    lastEnd = end;
    if (!all) break;
    search = end > search ? end : search + 1;
  }
  return out + text(lastEnd, cps.length);
}

/** A configured lexer (escape character and modes); reusable across words. */
export class ShellLexer {
  constructor(readonly options: ShellLexOptions = {}) {}

  /** Expand one word: quotes removed, escapes processed, variables expanded, no splitting. */
  processWord(word: string, env: ShellEnv): string {
    return this.processWordWithMatches(word, env).result;
  }

  /** Expand and split at unquoted whitespace (including whitespace inside expanded values). */
  processWords(word: string, env: ShellEnv): string[] {
    return this.processWordWithMatches(word, env).words;
  }

  /** Both views plus the names looked up. Throws ShellExpansionError. */
  processWordWithMatches(word: string, env: ShellEnv): ProcessWordResult {
    const sw = new ShellWord(word, toLookup(env), this.options);
    try {
      const [result, words] = sw.run();
      return { result, words, matched: sw.matched, unmatched: sw.unmatched };
    } catch (e) {
      if (e instanceof Failure) throw new ShellExpansionError(word, e.message);
      throw e;
    }
  }
}

/** processWord with a default (backslash) lexer. */
export function processWord(word: string, env: ShellEnv, options: ShellLexOptions = {}): string {
  return new ShellLexer(options).processWord(word, env);
}

/** processWords with a default (backslash) lexer. */
export function processWords(word: string, env: ShellEnv, options: ShellLexOptions = {}): string[] {
  return new ShellLexer(options).processWords(word, env);
}

/** processWordWithMatches with a default (backslash) lexer. */
export function processWordWithMatches(word: string, env: ShellEnv, options: ShellLexOptions = {}): ProcessWordResult {
  return new ShellLexer(options).processWordWithMatches(word, env);
}
