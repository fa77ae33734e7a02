/**
 * Heredoc recognition, as BuildKit's parser does it: the instruction line is
 * split into shell words with every variable unset and left as written, and
 * each word that looks like `[fd]<<[-][ ]NAME` announces a heredoc. A marker
 * with any quoting disables expansion of the body. Bodies are read by the
 * parser; chomping (`<<-`) only affects terminator matching there and is
 * applied to the content later with chompHeredoc().
 *
 * The word splitter here is deliberately minimal (no environment, variables
 * are kept verbatim); full expansion lives in shell-lexer.ts.
 */
import { isSpace } from './text.js';

export interface Heredoc {
  /** The terminator word, quotes removed. */
  name: string;
  /** The file descriptor before `<<` (`3<<EOF`), 0 when absent. */
  fileDescriptor: number;
  /** false when the marker had any quoting: the body is taken literally. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body lines and the terminator. */
  chomp: boolean;
  /** Raw body: the lines between marker and terminator, each with its line ending. */
  content: string;
}

/** A malformed heredoc marker (e.g. an unbalanced quote). */
export class HeredocSyntaxError extends Error {}

interface LexOptions {
  rawQuotes: boolean;
  rawEscapes: boolean;
}

const LETTER = /\p{L}/u;
const DIGIT = /\p{Nd}/u;

/** Shell-word splitting with no variables set and unset ones kept as written. */
class WordLexer {
  private pos = 0;
  private rawEscapes: boolean;

  constructor(
    private readonly src: string,
    private readonly opts: LexOptions,
  ) {
    this.rawEscapes = opts.rawEscapes;
  }

  words(): string[] {
    try {
      return this.processStopOn(undefined, this.opts.rawEscapes)[1];
    } catch (e) {
      // `${a:-${b:-…` nests by recursion; absurd depth is a lexing failure, not a crash.
      if (e instanceof RangeError) throw new HeredocSyntaxError('variable references nested too deeply');
      throw e;
    }
  }

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private processStopOn(stop: string | undefined, rawEscapes: boolean): [string, string[]] {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = '';
      const w = new Words();
      while (this.pos < this.src.length) {
        let ch = this.src[this.pos]!;
        if (stop !== undefined && ch === stop) {
          this.pos++;
          return [result, w.get()];
        }
        if (ch === '$') {
          const tmp = this.processDollar();
          result += tmp;
          w.addString(tmp);
          continue;
        }
        if (ch === "'" || ch === '"' || ch === '<') {
          const tmp = ch === "'" ? this.singleQuote() : ch === '"' ? this.doubleQuote() : this.possibleHeredoc();
          result += tmp;
          w.addRaw(tmp);
          continue;
        }
        this.pos++;
        if (ch === '\\') {
          if (this.rawEscapes) {
            w.addRaw(ch);
            result += ch;
          }
          if (this.pos >= this.src.length) break;
          ch = this.src[this.pos++]!;
          w.addRaw(ch);
        } else {
          w.addChar(ch);
        }
        result += ch;
      }
      if (stop !== undefined) throw new HeredocSyntaxError(`unexpected end of statement while looking for matching ${stop}`);
      return [result, w.get()];
    } finally {
      this.rawEscapes = saved;
    }
  }

  private singleQuote(): string {
    this.pos++;
    let out = this.opts.rawQuotes ? "'" : '';
    for (;;) {
      const ch = this.src[this.pos++];
      if (ch === undefined) throw new HeredocSyntaxError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return this.opts.rawQuotes ? out + ch : out;
      out += ch;
    }
  }

  private doubleQuote(): string {
    this.pos++;
    let out = this.opts.rawQuotes ? '"' : '';
    for (;;) {
      const p = this.peek();
      if (p === undefined) throw new HeredocSyntaxError('unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        this.pos++;
        return this.opts.rawQuotes ? out + p : out;
      }
      if (p === '$') {
        out += this.processDollar();
        continue;
      }
      let ch = this.src[this.pos++]!;
      if (ch === '\\') {
        if (this.rawEscapes) out += ch;
        const next = this.peek();
        if (next === undefined) continue;
        if (next === '"' || next === '$' || next === '\\') ch = this.src[this.pos++]!;
      }
      out += ch;
    }
  }

  private possibleHeredoc(): string {
    this.pos++;
    if (this.peek() !== '<') return '<';
    this.pos++;
    let space = '';
    while (this.peek() === ' ' || this.peek() === '\t') space += this.src[this.pos++];
    return '<<' + space;
  }

  private processName(): string {
    let name = '';
    while (this.pos < this.src.length) {
      const ch = this.src[this.pos]!;
      if (name === '' && DIGIT.test(ch)) {
        while (this.pos < this.src.length && DIGIT.test(this.src[this.pos]!)) name += this.src[this.pos++];
        return name;
      }
      if (name === '' && '@*#?-$!0'.includes(ch)) {
        this.pos++;
        return ch;
      }
      if (!LETTER.test(ch) && !DIGIT.test(ch) && ch !== '_') break;
      name += ch;
      this.pos++;
    }
    return name;
  }

  /** Every variable is unset: the reference is returned as written (inner words processed). */
  private processDollar(): string {
    this.pos++;
    if (this.peek() !== '{') {
      const name = this.processName();
      return '$' + name;
    }
    this.pos++;
    const p = this.peek();
    if (p === undefined) throw new HeredocSyntaxError("syntax error: missing '}'");
    if (p === '{' || p === '}' || p === ':') throw new HeredocSyntaxError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.src[this.pos++];
    let chs = ch ?? '\ufffd';
    switch (ch) {
      case '}':
        return '${' + name + '}';
      case ':':
      case '+':
      case '-':
      case '?':
      case '#':
      case '%': {
        if (ch === ':') {
          ch = this.src[this.pos++];
          chs += ch ?? '\ufffd';
        }
        let word: string;
        try {
          [word] = this.processStopOn('}', ch === '#' || ch === '%');
        } catch (e) {
          if (this.pos >= this.src.length) throw new HeredocSyntaxError("syntax error: missing '}'");
          throw e;
        }
        return '${' + name + chs + word + '}';
      }
      case '/': {
        if (this.peek() === '/') this.pos++;
        let pattern: string;
        try {
          [pattern] = this.processStopOn('/', true);
        } catch (e) {
          if (this.pos >= this.src.length) throw new HeredocSyntaxError("syntax error: missing '/' in ${}");
          throw e;
        }
        let repl: string;
        try {
          [repl] = this.processStopOn('}', true);
        } catch (e) {
          if (this.pos >= this.src.length) throw new HeredocSyntaxError("syntax error: missing '}'");
          throw e;
        }
        return '${' + name + '/' + pattern + '/' + repl + '}';
      }
      default:
        throw new HeredocSyntaxError(`unsupported modifier (${chs}) in substitution`);
    }
  }
}

class Words {
  private word = '';
  private words: string[] = [];
  private inWord = false;

  addChar(ch: string): void {
    const sp = isSpace(ch.charCodeAt(0));
    if (sp && this.inWord) {
      if (this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else if (!sp) {
      this.addRaw(ch);
    }
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  addRaw(s: string): void {
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

const RE_HEREDOC = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

/**
 * Parse one word as a heredoc marker. Returns undefined when the word is not
 * a marker; throws HeredocSyntaxError when it is one but malformed.
 */
export function parseHeredocMarker(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = RE_HEREDOC.exec(word);
  if (!m) return undefined;
  const fd = m[1] === '' ? 0 : Number(m[1]);
  const chomp = m[2] === '-';
  const rest = m[3]!;
  if (rest.length === 0) return undefined;
  const words = new WordLexer(rest, { rawQuotes: false, rawEscapes: false }).words();
  if (words.length !== 1) return undefined;
  const raw = new WordLexer(rest, { rawQuotes: true, rawEscapes: false }).words();
  if (raw.length !== words.length) throw new HeredocSyntaxError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const quotes = (s: string) => s.split("'").length + s.split('"').length - 2;
  return { name: words[0]!, fileDescriptor: Number.isSafeInteger(fd) ? fd : 0, expand: quotes(words[0]!) === quotes(raw[0]!), chomp };
}

/** parseHeredocMarker, with a malformed marker counting as no marker (BuildKit's MustParseHeredoc). */
export function mustParseHeredocMarker(word: string): Omit<Heredoc, 'content'> | undefined {
  try {
    return parseHeredocMarker(word);
  } catch (e) {
    if (e instanceof HeredocSyntaxError) return undefined;
    throw e;
  }
}

/** The heredocs a whole instruction line announces, in order (bodies not read yet). */
export function heredocsFromLine(line: string): Array<Omit<Heredoc, 'content'>> {
  let words: string[];
  try {
    words = new WordLexer(line, { rawQuotes: true, rawEscapes: true }).words();
  } catch (e) {
    if (e instanceof HeredocSyntaxError) return [];
    throw e;
  }
  const docs: Array<Omit<Heredoc, 'content'>> = [];
  for (const w of words) {
    const h = parseHeredocMarker(w);
    if (h) docs.push(h);
  }
  return docs;
}

/** `<<-` chomping: remove leading tabs from every line of the body. */
export function chompHeredoc(content: string): string {
  return content.replace(/(^|\n)\t+/g, '$1');
}
