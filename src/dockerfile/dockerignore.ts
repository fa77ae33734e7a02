/**
 * .dockerignore: parsing the file into an ordered pattern list, and matching context paths
 * against it with moby/patternmatcher's semantics (what BuildKit and Docker use).
 *
 * - parseDockerignore(text): BOM stripped, `#` comments only in column 1, lines trimmed, paths
 *   cleaned, one leading `/` dropped, `!` kept in front.
 * - new PatternMatcher(patterns): `*` `?` `[…]` `\` escapes, `**` any number of segments; every
 *   other regexp metacharacter is literal. The last matching pattern decides; `!` re-includes;
 *   a pattern that matches a parent directory matches everything below it.
 * - selectDockerignore(): `<Dockerfile>.dockerignore` beside the Dockerfile wins over the
 *   context's `.dockerignore`.
 * Pure: no I/O (callers pass text and an exists() lookup).
 */
import { KilnError } from '../errors.js';

/** A bad .dockerignore file or pattern. */
export class DockerignoreError extends KilnError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('DOCKERIGNORE_INVALID', message, options);
  }
}

/** The message Go gives for a malformed glob (filepath.ErrBadPattern). */
export const BAD_PATTERN = 'syntax error in pattern';

// ---------------------------------------------------------------------------------------------
// paths

/** Go's path.Clean: lexical cleanup of a slash-separated path ("" → "."). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

/** Go's path.Dir. */
function dirOf(p: string): string {
  const i = p.lastIndexOf('/');
  return cleanPath(p.slice(0, i + 1));
}

/** Go's strings.TrimSpace (Unicode white space). */
function trimSpace(s: string): string {
  return s.replace(/^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/, '').replace(/[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/, '');
}

// ---------------------------------------------------------------------------------------------
// the ignore file

const MAX_LINE_BYTES = 64 * 1024;

/** Turn .dockerignore text into the ordered pattern list (a bare "!" is kept; the matcher rejects it). */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  if (text === '') return patterns;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // a final newline ends the last line
  lines.forEach((raw, i) => {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (Buffer.byteLength(raw, 'utf8') >= MAX_LINE_BYTES) {
      throw new DockerignoreError(`Cannot read .dockerignore: line ${i + 1} is longer than ${MAX_LINE_BYTES - 1} bytes`);
    }
    if (i === 0 && line.startsWith('\ufeff')) line = line.slice(1);
    if (line.startsWith('#')) return;
    let pattern = trimSpace(line);
    if (pattern === '') return;
    const invert = pattern.startsWith('!');
    if (invert) pattern = trimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(invert ? '!' + pattern : pattern);
  });
  return patterns;
}

/**
 * Which ignore file applies: `<dockerfile>.dockerignore` (next to the Dockerfile, same base name)
 * when it exists, else `<context>/.dockerignore` when it exists, else none. Paths are joined
 * with "/"; `exists` is the caller's file lookup.
 */
export function selectDockerignore(dockerfilePath: string, contextDir: string, exists: (path: string) => boolean): string | undefined {
  const specific = `${dockerfilePath}.dockerignore`;
  if (exists(specific)) return specific;
  const general = contextDir === '' ? '.dockerignore' : `${contextDir.replace(/\/+$/, '')}/.dockerignore`;
  if (exists(general)) return general;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Go filepath.Match syntax check (Unix: `\` escapes)

/** Throws DockerignoreError(BAD_PATTERN) when Go's filepath.Match would report ErrBadPattern. */
function checkGlobSyntax(pattern: string): void {
  const p = Array.from(pattern);
  const bad = () => new DockerignoreError(BAD_PATTERN);
  // one class/escape unit as Go's getEsc reads it; returns the index after it
  const getEsc = (i: number): number => {
    if (i >= p.length || p[i] === '-' || p[i] === ']') throw bad();
    if (p[i] === '\\') {
      i++;
      if (i >= p.length) throw bad();
    }
    i++;
    if (i >= p.length) throw bad();
    return i;
  };
  for (let i = 0; i < p.length; ) {
    const c = p[i]!;
    if (c === '\\') {
      if (i + 1 >= p.length) throw bad();
      i += 2;
    } else if (c === '[') {
      i++;
      if (p[i] === '^') i++;
      let nrange = 0;
      for (;;) {
        if (i < p.length && p[i] === ']' && nrange > 0) {
          i++;
          break;
        }
        i = getEsc(i);
        if (p[i] === '-') i = getEsc(i + 1);
        nrange++;
      }
    } else i++;
  }
}

// ---------------------------------------------------------------------------------------------
// Go regexp (RE2 syntax, Perl flags) → JavaScript RegExp, for the expressions patterns compile to

class RegexSyntaxError extends Error {}

type Ranges = Array<[number, number]>;
const MAX_RUNE = 0x10ffff;

const POSIX_CLASSES: Record<string, Ranges> = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0x00, 0x7f]],
  blank: [[0x09, 0x09], [0x20, 0x20]],
  cntrl: [[0x00, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[0x09, 0x0d], [0x20, 0x20]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a], [0x5f, 0x5f]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};
const PERL_CLASSES: Record<string, Ranges> = {
  d: [[0x30, 0x39]],
  s: [[0x09, 0x0a], [0x0c, 0x0d], [0x20, 0x20]],
  w: POSIX_CLASSES.word!,
};

function complement(r: Ranges): Ranges {
  const sorted = [...r].sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= MAX_RUNE) out.push([next, MAX_RUNE]);
  return out;
}

const u = (cp: number) => `\\u{${cp.toString(16)}}`;
const rangesToClassBody = (r: Ranges) => r.map(([lo, hi]) => (lo === hi ? u(lo) : `${u(lo)}-${u(hi)}`)).join('');

const GENERAL_CATEGORIES = new Set(
  'C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs'.split(' '),
);

/** Translate Go's \pX / \p{Name} to a JS escape (inside or outside a class). */
function unicodeClass(negated: boolean, name: string): string {
  let neg = negated;
  let n = name;
  if (n.startsWith('^')) {
    neg = !neg;
    n = n.slice(1);
  }
  if (n === 'Any') return neg ? '' : '\\s\\S';
  const prop = GENERAL_CATEGORIES.has(n) ? n : `Script=${n}`;
  return `\\${neg ? 'P' : 'p'}{${prop}}`;
}

/** Parse one Go escape at src[i] === '\\'. Returns either a code point or a class body piece. */
function parseEscape(src: string[], i: number, inClass: boolean): { cp?: number; cls?: string; assertion?: string; end: number } {
  const c = src[i + 1];
  if (c === undefined) throw new RegexSyntaxError('trailing backslash');
  let j = i + 2;
  const code = c.codePointAt(0)!;
  if (code < 0x80 && !/[0-9A-Za-z]/.test(c)) return { cp: code, end: j };
  switch (c) {
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
      // a single non-zero digit would be a backreference, which RE2 does not support
      if (c !== '0' && !(src[j] !== undefined && src[j]! >= '0' && src[j]! <= '7')) throw new RegexSyntaxError('backreference');
      let r = code - 0x30;
      for (let k = 1; k < 3; k++) {
        if (src[j] === undefined || src[j]! < '0' || src[j]! > '7') break;
        r = r * 8 + (src[j]!.codePointAt(0)! - 0x30);
        j++;
      }
      return { cp: r, end: j };
    }
    case 'x': {
      if (src[j] === '{') {
        let k = j + 1;
        let hex = '';
        while (k < src.length && src[k] !== '}') hex += src[k++];
        if (k >= src.length || !/^[0-9A-Fa-f]+$/.test(hex)) throw new RegexSyntaxError('bad \\x{}');
        const v = parseInt(hex, 16);
        if (v > MAX_RUNE) throw new RegexSyntaxError('bad \\x{}');
        return { cp: v, end: k + 1 };
      }
      const hex = (src[j] ?? '') + (src[j + 1] ?? '');
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new RegexSyntaxError('bad \\x');
      return { cp: parseInt(hex, 16), end: j + 2 };
    }
    case 'a': return { cp: 7, end: j };
    case 'f': return { cp: 12, end: j };
    case 't': return { cp: 9, end: j };
    case 'n': return { cp: 10, end: j };
    case 'r': return { cp: 13, end: j };
    case 'v': return { cp: 11, end: j };
    case 'd': case 's': case 'w':
      return { cls: rangesToClassBody(PERL_CLASSES[c]!), end: j };
    case 'D': case 'S': case 'W':
      return { cls: rangesToClassBody(complement(PERL_CLASSES[c.toLowerCase()]!)), end: j };
    case 'p': case 'P': {
      let name: string;
      if (src[j] === '{') {
        let k = j + 1;
        name = '';
        while (k < src.length && src[k] !== '}') name += src[k++];
        if (k >= src.length) throw new RegexSyntaxError('bad \\p{}');
        j = k + 1;
      } else {
        if (src[j] === undefined) throw new RegexSyntaxError('bad \\p');
        name = src[j]!;
        j++;
      }
      return { cls: unicodeClass(c === 'P', name), end: j };
    }
    default:
      if (!inClass) {
        if (c === 'b') return { assertion: '\\b', end: j };
        if (c === 'B') return { assertion: '\\B', end: j };
        if (c === 'A') return { assertion: '^', end: j };
        if (c === 'z') return { assertion: '$', end: j };
      }
      throw new RegexSyntaxError(`invalid escape \\${c}`);
  }
}

/** A Go character class `[…]` starting at src[i] === '['; returns a JS class source and the index after it. */
function parseGoClass(src: string[], i: number): { cls: string; end: number } {
  i++;
  let negated = false;
  if (src[i] === '^') {
    negated = true;
    i++;
  }
  let body = '';
  let first = true;
  for (;;) {
    if (i >= src.length) throw new RegexSyntaxError('missing closing ]');
    if (src[i] === ']' && !first) {
      i++;
      break;
    }
    first = false;
    if (src[i] === '[' && src[i + 1] === ':') {
      const close = src.indexOf(':', i + 2);
      if (close !== -1 && src[close + 1] === ']') {
        let name = src.slice(i + 2, close).join('');
        let neg = false;
        if (name.startsWith('^')) {
          neg = true;
          name = name.slice(1);
        }
        const r = POSIX_CLASSES[name];
        if (!r) throw new RegexSyntaxError('invalid character class range');
        body += rangesToClassBody(neg ? complement(r) : r);
        i = close + 2;
        continue;
      }
    }
    const readChar = (): { cp?: number; cls?: string } => {
      if (i >= src.length) throw new RegexSyntaxError('missing closing ]');
      if (src[i] === '\\') {
        const e = parseEscape(src, i, true);
        i = e.end;
        return e.cp !== undefined ? { cp: e.cp } : { cls: e.cls ?? '' };
      }
      return { cp: src[i++]!.codePointAt(0)! };
    };
    const lo = readChar();
    if (lo.cls !== undefined) {
      body += lo.cls;
      continue;
    }
    let hi = lo.cp!;
    if (src[i] === '-' && i + 1 < src.length && src[i + 1] !== ']') {
      i++;
      const h = readChar();
      if (h.cp === undefined) throw new RegexSyntaxError('invalid character class range');
      hi = h.cp;
      if (hi < lo.cp!) throw new RegexSyntaxError('invalid character class range');
    }
    body += lo.cp === hi ? u(hi) : `${u(lo.cp!)}-${u(hi)}`;
  }
  const cls = negated ? (body === '' ? '[\\s\\S]' : `[^${body}]`) : body === '' ? '[]' : `[${body}]`;
  return { cls, end: i };
}

type Assertion = '^' | '$' | 'b' | 'B';
type ReNode =
  | { t: 'char'; test: (cp: number) => boolean }
  | { t: 'assert'; k: Assertion }
  | { t: 'group'; seq: ReNode[] }
  | { t: 'rep'; node: ReNode; min: 0 | 1; max: 1 | 'inf' };

/** A one-character matcher from a JS class/escape source (single character: no backtracking). */
function charTest(jsSingleChar: string): (cp: number) => boolean {
  let re: RegExp;
  try {
    re = new RegExp(`^${jsSingleChar}$`, 'u');
  } catch (e) {
    throw new RegexSyntaxError(String(e));
  }
  return (cp) => re.test(String.fromCodePoint(cp));
}
const literal = (c: number) => ({ t: 'char' as const, test: (cp: number) => cp === c });

/** Parse the Go regexp subset pattern compilation produces (and whatever escapes let through). */
function parseGoRegex(src: string[], i: number, depth: number): { seq: ReNode[]; end: number } {
  const seq: ReNode[] = [];
  while (i < src.length) {
    const c = src[i]!;
    if (c === ')') {
      if (depth === 0) throw new RegexSyntaxError('unexpected )');
      return { seq, end: i };
    }
    if (c === '(') {
      if (src[i + 1] === '?') throw new RegexSyntaxError('unsupported group');
      const inner = parseGoRegex(src, i + 1, depth + 1);
      if (src[inner.end] !== ')') throw new RegexSyntaxError('missing closing )');
      seq.push({ t: 'group', seq: inner.seq });
      i = inner.end + 1;
    } else if (c === '*' || c === '+' || c === '?') {
      const last = seq.pop();
      if (!last || last.t === 'assert' || last.t === 'rep') throw new RegexSyntaxError('missing argument to repetition operator');
      seq.push({ t: 'rep', node: last, min: c === '+' ? 1 : 0, max: c === '?' ? 1 : 'inf' });
      i++;
      if (src[i] === '?') i++; // lazy: same set of matches
    } else if (c === '|') {
      throw new RegexSyntaxError('unsupported alternation');
    } else if (c === '^' || c === '$') {
      seq.push({ t: 'assert', k: c });
      i++;
    } else if (c === '.') {
      seq.push({ t: 'char', test: (cp) => cp !== 0x0a });
      i++;
    } else if (c === '[') {
      const k = parseGoClass(src, i);
      seq.push({ t: 'char', test: charTest(k.cls) });
      i = k.end;
    } else if (c === '\\') {
      if (src[i + 1] === 'Q') {
        let k = i + 2;
        while (k < src.length && !(src[k] === '\\' && src[k + 1] === 'E')) seq.push(literal(src[k++]!.codePointAt(0)!));
        i = k < src.length ? k + 2 : k;
        continue;
      }
      const e = parseEscape(src, i, false);
      if (e.cp !== undefined) seq.push(literal(e.cp));
      else if (e.cls !== undefined) seq.push({ t: 'char', test: charTest(e.cls === '' ? '[]' : `[${e.cls}]`) });
      else seq.push({ t: 'assert', k: e.assertion === '\\b' ? 'b' : e.assertion === '\\B' ? 'B' : (e.assertion as '^' | '$') });
      i = e.end;
    } else {
      seq.push(literal(c.codePointAt(0)!));
      i++;
    }
  }
  if (depth > 0) throw new RegexSyntaxError('missing closing )');
  return { seq, end: i };
}

type Inst =
  | { op: 'char'; test: (cp: number) => boolean }
  | { op: 'split'; x: number; y: number }
  | { op: 'jmp'; x: number }
  | { op: 'assert'; k: Assertion }
  | { op: 'match' };

function emit(node: ReNode, prog: Inst[]): void {
  switch (node.t) {
    case 'char':
      prog.push({ op: 'char', test: node.test });
      return;
    case 'assert':
      prog.push({ op: 'assert', k: node.k });
      return;
    case 'group':
      for (const n of node.seq) emit(n, prog);
      return;
    case 'rep': {
      if (node.min === 1) {
        const top = prog.length;
        emit(node.node, prog);
        prog.push({ op: 'split', x: top, y: prog.length + 1 });
        return;
      }
      const at = prog.length;
      const split = { op: 'split' as const, x: at + 1, y: 0 };
      prog.push(split);
      emit(node.node, prog);
      if (node.max === 'inf') prog.push({ op: 'jmp', x: at });
      split.y = prog.length;
      return;
    }
  }
}

const isWordCp = (cp: number | undefined) => cp !== undefined && ((cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f);

/**
 * Compile a Go regexp (as patternmatcher builds it) to a matcher with Go's MatchString answer,
 * simulated as a set of NFA states: linear in pattern × path, no backtracking.
 */
function compileGoRegex(goSrc: string): (s: string) => boolean {
  const { seq } = parseGoRegex(Array.from(goSrc), 0, 0);
  const prog: Inst[] = [];
  for (const n of seq) emit(n, prog);
  prog.push({ op: 'match' });
  const seen = new Int32Array(prog.length).fill(-1);
  return (s) => {
    const cps = Array.from(s, (c) => c.codePointAt(0)!);
    let stamp = 0;
    const work: number[] = [];
    /** Add pc's epsilon closure at pos to list (iterative: long `**` chains must not recurse). */
    const add = (list: number[], start: number, pos: number): void => {
      work.push(start);
      while (work.length > 0) {
        const pc = work.pop()!;
        if (seen[pc] === stamp) continue;
        seen[pc] = stamp;
        const ins = prog[pc]!;
        if (ins.op === 'jmp') work.push(ins.x);
        else if (ins.op === 'split') work.push(ins.y, ins.x);
        else if (ins.op === 'assert') {
          const ok =
            ins.k === '^' ? pos === 0 : ins.k === '$' ? pos === cps.length : (isWordCp(cps[pos - 1]) !== isWordCp(cps[pos])) === (ins.k === 'b');
          if (ok) work.push(pc + 1);
        } else list.push(pc);
      }
    };
    seen.fill(-1);
    // Go's MatchString searches at every start; a leading ^ makes all but position 0 fail at once.
    // Threads are de-duplicated per position: the stamp is the position being filled.
    let list: number[] = [];
    for (let pos = 0; ; pos++) {
      stamp = pos;
      add(list, 0, pos);
      for (const pc of list) if (prog[pc]!.op === 'match') return true;
      if (pos === cps.length) return false;
      stamp = pos + 1;
      const next: number[] = [];
      for (const pc of list) {
        const ins = prog[pc]!;
        if (ins.op === 'char' && ins.test(cps[pos]!)) add(next, pc + 1, pos + 1);
      }
      list = next;
    }
  };
}

// ---------------------------------------------------------------------------------------------
// patterns

type MatchType = 'unknown' | 'exact' | 'prefix' | 'suffix' | 'regexp';

/**
 * patternmatcher's translation of one cleaned pattern (no `!`) into a Go regexp source, and the
 * cheaper match type it settles on (exact / prefix / suffix compare the pattern text itself).
 */
export function patternToGoRegex(text: string): { type: 'exact' | 'prefix' | 'suffix' | 'regexp'; source: string } {
  const cps = Array.from(text);
  let pos = cps[0] === '\ufeff' ? 1 : 0;
  const peek = () => (pos < cps.length ? cps[pos]! : undefined);
  const next = () => (pos < cps.length ? cps[pos++]! : undefined);
  let re = '^';
  let type: Exclude<MatchType, 'unknown'> = 'exact';
  for (let i = 0; peek() !== undefined; i++) {
    const ch = next()!;
    if (ch === '*') {
      if (peek() === '*') {
        next();
        if (peek() === '/') next(); // "**/" is "**"
        if (peek() === undefined) {
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (i === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if ('.+()|{}$'.includes(ch)) {
      re += '\\' + ch;
    } else if (ch === '\\') {
      if (peek() !== undefined) {
        re += '\\' + next()!;
        type = 'regexp';
      } else re += '\\';
    } else if (ch === '[' || ch === ']') {
      re += ch;
      type = 'regexp';
    } else re += ch;
  }
  return { type, source: re + '$' };
}


/** One ignore pattern (without its `!`), compiled lazily on first match as patternmatcher does. */
export class IgnorePattern {
  /** The cleaned pattern text, without the leading `!`. */
  readonly text: string;
  /** A `!` re-include pattern. */
  readonly exclusion: boolean;
  private matchType: MatchType = 'unknown';
  private matcher?: (path: string) => boolean;

  constructor(text: string, exclusion: boolean) {
    this.text = text;
    this.exclusion = exclusion;
  }

  toString(): string {
    return (this.exclusion ? '!' : '') + this.text;
  }

  /** Does this pattern match exactly this path? Throws DockerignoreError(BAD_PATTERN). */
  match(path: string): boolean {
    if (this.matchType === 'unknown') {
      try {
        this.compile();
      } catch (e) {
        if (e instanceof RegexSyntaxError) throw new DockerignoreError(BAD_PATTERN, { cause: e });
        throw e;
      }
    }
    switch (this.matchType) {
      case 'exact':
        return path === this.text;
      case 'prefix':
        return path.startsWith(this.text.slice(0, -2));
      case 'suffix': {
        const suffix = this.text.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith('/') && path === suffix.slice(1);
      }
      case 'regexp':
        return this.matcher!(path);
      default:
        return false;
    }
  }

  /** Translate to a (Go) regular expression, deciding the cheaper match types on the way. */
  private compile(): void {
    const { type, source } = patternToGoRegex(this.text);
    if (type !== 'regexp') {
      this.matchType = type;
      return;
    }
    this.matcher = compileGoRegex(source);
    this.matchType = 'regexp';
  }
}

/** Per-pattern results for a directory, handed to its children (see matchesUsingParentResults). */
export interface ParentMatchInfo {
  readonly parentMatched: readonly boolean[];
}

/** An ordered list of ignore patterns; the last matching pattern decides. */
export class PatternMatcher {
  readonly patterns: readonly IgnorePattern[];
  /** Whether any `!` pattern exists (an excluded directory may then hold included paths). */
  readonly hasExclusions: boolean;

  /** Throws DockerignoreError for a bare "!" or a malformed glob. Empty patterns are skipped. */
  constructor(patterns: readonly string[]) {
    const out: IgnorePattern[] = [];
    let exclusions = false;
    for (const raw of patterns) {
      let p = trimSpace(raw);
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new DockerignoreError('illegal exclusion pattern: "!"');
        exclusion = true;
        exclusions = true;
        p = p.slice(1);
      }
      try {
        checkGlobSyntax(p);
      } catch (e) {
        if (e instanceof DockerignoreError) throw new DockerignoreError(`${BAD_PATTERN}: ${JSON.stringify(p)}`, { cause: e });
        throw e;
      }
      out.push(new IgnorePattern(p, exclusion));
    }
    this.patterns = out;
    this.hasExclusions = exclusions;
  }

  /**
   * Is this context path (slash-separated, relative) excluded? A pattern matches the path or any
   * of its parent directories. Throws DockerignoreError(BAD_PATTERN) for a pattern that cannot compile.
   */
  matches(file: string): boolean {
    let matched = false;
    const parentPath = dirOf(file);
    const parentDirs = parentPath.split('/');
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue; // cannot change the outcome
      let match = pattern.match(file);
      if (!match && parentPath !== '.') {
        for (let i = 0; i < parentDirs.length && !match; i++) match = safeMatch(pattern, parentDirs.slice(0, i + 1).join('/'));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * matches() for a tree walk: the parent directory's info replaces re-checking the parent
   * directories. Pass undefined for a top-level path. Returns the info for this path's children.
   */
  matchesUsingParentResults(file: string, parent: ParentMatchInfo | undefined): { excluded: boolean; info: ParentMatchInfo } {
    const parentMatched = parent?.parentMatched;
    const mine = new Array<boolean>(this.patterns.length).fill(false);
    let matched = false;
    this.patterns.forEach((pattern, i) => {
      let match = parentMatched ? parentMatched[i]! : false;
      if (!match) {
        if (pattern.exclusion !== matched) return;
        match = pattern.match(file);
        if (!match && !parentMatched) {
          const parentPath = dirOf(file);
          if (parentPath !== '.') {
            const dirs = parentPath.split('/');
            for (let k = 0; k < dirs.length && !match; k++) match = safeMatch(pattern, dirs.slice(0, k + 1).join('/'));
          }
        }
      }
      mine[i] = match;
      if (match) matched = !pattern.exclusion;
    });
    return { excluded: matched, info: { parentMatched: mine } };
  }
}

/** Parent-directory checks ignore errors (the path itself was already matched without one). */
function safeMatch(p: IgnorePattern, path: string): boolean {
  try {
    return p.match(path);
  } catch {
    return false;
  }
}

/** Convenience: parse an ignore file and build its matcher. */
export function dockerignoreMatcher(text: string): PatternMatcher {
  return new PatternMatcher(parseDockerignore(text));
}
