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
    super('DOCKERFILE_EXPANSION', `failed to process ${JSON.stringify(word)}: ${detail}`);
    this.word = word;
    this.detail = detail;
  }
}

class Failure extends Error {}

const EOF = -1;

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
        const re = patternRegExp(pattern, true, false);
        return replaceAll ? goReplaceAll(value, re, replacement) : goReplaceFirst(value, re, replacement);
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

/**
 * A ${…} glob (`*` any run, `?` one character, `\` escapes * ? \, and drops itself before } and /)
 * as a regular expression; every other character is literal. Bracket expressions are not supported.
 */
function patternRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const cps = Array.from(pattern);
  let out = anchored ? '^' : '';
  for (let i = 0; i < cps.length; i++) {
    let tok = cps[i]!;
    if (tok === '*') {
      out += greedy ? '[^\\n]*' : '[^\\n]*?';
      continue;
    }
    if (tok === '?') {
      out += '[^\\n]';
      continue;
    }
    if (tok === '\\') {
      const nx = cps[i + 1];
      if (nx === '}' || nx === '/') continue;
      i++;
      tok = cps[i] ?? '';
      if (tok !== '*' && tok !== '?' && tok !== '\\') {
        throw new Failure(`invalid pattern (${pattern}) in substitution: invalid escape '\\${tok}'`);
      }
      out += `\\${tok}`;
      continue;
    }
    out += /[[\]{}.+()|^$/]/.test(tok) ? `\\${tok}` : tok;
  }
  return new RegExp(out, 'gu');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const re = patternRegExp(pattern, greedy, true);
  re.lastIndex = 0;
  const m = re.exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
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

/** Shortest/longest rightmost match = leftmost match on the reversed pattern and value. */
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
    let name: string | undefined;
    let end = i;
    if (template[i + 1] === '{') {
      const m = /^\{([A-Za-z0-9_]+)\}/.exec(template.slice(i + 1));
      if (m) {
        name = m[1];
        end = i + m[0].length;
      }
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(template.slice(i + 1));
      if (m) {
        name = m[0];
        end = i + m[0].length;
      }
    }
    if (name === undefined) {
      out += '$';
      continue;
    }
    if (/^[0-9]+$/.test(name) && Number(name) === 0) out += match;
    i = end;
  }
  return out;
}

function goReplaceFirst(value: string, re: RegExp, replacement: string): string {
  re.lastIndex = 0;
  const m = re.exec(value);
  if (!m) return value;
  return value.slice(0, m.index) + expandTemplate(replacement, m[0]) + value.slice(m.index + m[0].length);
}

/** Go's ReplaceAllString: non-overlapping matches; an empty match right after a match is skipped. */
function goReplaceAll(value: string, re: RegExp, replacement: string): string {
  let out = '';
  let lastEnd = 0;
  let search = 0;
  while (search <= value.length) {
    re.lastIndex = search;
    const m = re.exec(value);
    if (!m) break;
    const start = m.index;
    const end = start + m[0].length;
    out += value.slice(lastEnd, start);
    if (end > lastEnd || start === 0) out += expandTemplate(replacement, m[0]);
    lastEnd = end;
    const width = search < value.length ? (value.codePointAt(search)! > 0xffff ? 2 : 1) : 0;
    if (search + width > end) search += width;
    else if (search + 1 > end) search++;
    else search = end;
  }
  return out + value.slice(lastEnd);
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
