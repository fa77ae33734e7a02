/**
 * Dockerfile text → low-level node tree, with BuildKit's parser semantics:
 * parser directives in the leading block, comments, line continuations with
 * the escape character, empty/comment lines inside continuations, JSON (exec)
 * vs shell form, ENV/LABEL name-value triples, flags before the arguments,
 * ONBUILD nesting and heredoc bodies. Nothing is expanded here.
 *
 * Contract: parseDockerfile() is pure and total — any input gives a
 * ParseResult or throws a DockerfileError naming the file and line(s).
 */
import { DockerfileError, type SourceRange } from '../errors.js';
import { type Heredoc, HeredocSyntaxError, heredocsFromLine } from './heredoc.js';
import { decodeJsonArray } from './json-array.js';
import { RE_WHITESPACE, isSpace, matchDirectiveLine, splitN, trimLeftSpace, trimSpace } from './text.js';

export type { Heredoc } from './heredoc.js';

/** One instruction as parsed (BuildKit's Node), before any typing or expansion. */
export interface DockerfileNode {
  /** The keyword as written ("run", "RUN", "Run" …). */
  keyword: string;
  /** `--name=value` words before the arguments, as written (quotes removed). */
  flags: string[];
  /**
   * The argument words: JSON array elements (exec form), the rest of the line
   * (shell form), whitespace-separated words, or `key value sep` triples (ENV/LABEL).
   */
  args: string[];
  /** ONBUILD's trigger instruction. */
  onbuild?: DockerfileNode;
  /** Arguments came from a JSON array (exec form). */
  json: boolean;
  /** The logical line (continuations joined) the node was parsed from. */
  original: string;
  /** Physical lines, 1-based inclusive, including heredoc bodies. */
  range: SourceRange;
  /** Heredocs announced on the line, with their raw bodies. */
  heredocs: Heredoc[];
  /** Comment lines directly above the instruction (without '#'). */
  comments: string[];
}

export interface Directive {
  name: 'syntax' | 'escape' | 'check';
  value: string;
  line: number;
}

export interface ParseWarning {
  short: string;
  detail: string;
  url: string;
  range: SourceRange;
}

export interface ParseResult {
  file: string;
  nodes: DockerfileNode[];
  escapeToken: '\\' | '`';
  directives: Directive[];
  warnings: ParseWarning[];
  /** First line of the first instruction to last line of the last. */
  range: SourceRange;
  /** The decoded text (BOM removed), for error excerpts. */
  source: string;
}

export interface ParseOptions {
  /** Name used in errors (default "Dockerfile"). */
  file?: string;
}

/** bufio.MaxScanTokenSize - 1 */
export const MAX_LINE_BYTES = 65535;

const DIRECTIVE_NAMES = new Set(['syntax', 'escape', 'check']);

/** The parser-directive state: escape token and the leading directive block. */
class Directives {
  escapeToken: '\\' | '`' = '\\';
  private continuation = /([^\\])\\[ \t]*$|^\\[ \t]*$/;
  private done = false;
  private readonly seen = new Set<string>();
  readonly found: Directive[] = [];

  /** Look at one (trimmed) line for a directive; ends the block at the first non-directive. */
  inspect(line: string, lineNo: number): void {
    if (this.done) return;
    const m = matchDirectiveLine(line, '#');
    const key = m?.name.toLowerCase();
    if (!m || !DIRECTIVE_NAMES.has(key!)) {
      this.done = true;
      return;
    }
    if (this.seen.has(key!)) throw new Error(`only one ${key} parser directive can be used`);
    this.seen.add(key!);
    const value = m.value;
    if (key === 'escape') {
      if (value !== '`' && value !== '\\') throw new Error(`invalid escape token '${value}' does not match \` or \\`);
      this.escapeToken = value;
      const e = value === '`' ? '`' : '\\\\';
      this.continuation = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
    }
    this.found.push({ name: key as Directive['name'], value, line: lineNo });
  }

  /** Strip a trailing continuation character; true when the line continues. */
  trimContinuation(line: string): [string, boolean] {
    const m = this.continuation.exec(line);
    if (!m) return [line, false];
    return [line.slice(0, m.index) + (m[1] ?? ''), true];
  }
}

function trimNewline(s: string): string {
  let j = s.length;
  while (j > 0 && (s.charCodeAt(j - 1) === 0x0a || s.charCodeAt(j - 1) === 0x0d)) j--;
  return j === s.length ? s : s.slice(0, j);
}

function isComment(raw: string): boolean {
  return trimLeftSpace(trimNewline(raw)).startsWith('#');
}

function byteLength(s: string): number {
  return s.length * 3 <= MAX_LINE_BYTES ? s.length : new TextEncoder().encode(s).length;
}

/** Decode input bytes as UTF-8 (invalid sequences become U+FFFD) and drop a leading BOM. */
export function decodeDockerfile(input: string | Uint8Array): string {
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(input);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Parse a Dockerfile. Throws DockerfileError on invalid input. */
export function parseDockerfile(input: string | Uint8Array, options: ParseOptions = {}): ParseResult {
  const file = options.file ?? 'Dockerfile';
  const source = decodeDockerfile(input);
  const lines: string[] = [];
  for (let start = 0; start < source.length; ) {
    const nl = source.indexOf('\n', start);
    const end = nl === -1 ? source.length : nl + 1;
    lines.push(source.slice(start, end));
    start = end;
  }
  const fail = (message: string, startLine: number, endLine = startLine, instruction?: string): never => {
    throw new DockerfileError(message, {
      file,
      range: { startLine: Math.max(1, startLine), endLine: Math.max(1, startLine, endLine) },
      ...(instruction ? { instruction } : {}),
    });
  };

  let next = 0; // index of the next physical line
  const scan = (): string | undefined => {
    if (next >= lines.length) return undefined;
    const line = lines[next++]!;
    if (byteLength(line.endsWith('\n') ? line.slice(0, -1) : line) > MAX_LINE_BYTES) {
      fail(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`, next);
    }
    return line;
  };

  const d = new Directives();
  const nodes: DockerfileNode[] = [];
  const warnings: ParseWarning[] = [];
  let comments: string[] = [];
  let currentLine = 0;

  for (let raw = scan(); raw !== undefined; raw = scan()) {
    if (isComment(raw)) {
      const comment = trimSpace(raw.slice(1));
      if (comment === '') comments = [];
      else comments.push(comment);
    }
    let token = trimLeftSpace(trimNewline(raw));
    currentLine++;
    try {
      d.inspect(token, currentLine);
    } catch (e) {
      fail((e as Error).message, currentLine);
    }
    if (token.startsWith('#')) token = '';

    const startLine = currentLine;
    let [line, continues] = d.trimContinuation(token);
    if (!continues && line === '') continue;

    let emptyContinuation = false;
    while (continues) {
      const rawNext = scan();
      if (rawNext === undefined) break;
      let t = trimNewline(rawNext);
      currentLine++;
      try {
        d.inspect(t, currentLine);
      } catch (e) {
        fail((e as Error).message, currentLine);
      }
      if (isComment(rawNext)) continue;
      if (trimLeftSpace(t).length === 0) {
        emptyContinuation = true;
        continue;
      }
      [t, continues] = d.trimContinuation(t);
      line += t;
    }

    if (emptyContinuation) {
      warnings.push({
        short: 'Empty continuation line found in: ' + line,
        detail: 'Empty continuation lines will become errors in a future release',
        url: 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/',
        range: { startLine: currentLine, endLine: currentLine },
      });
    }

    let node: DockerfileNode;
    try {
      node = nodeFromLine(line, d.escapeToken, comments);
    } catch (e) {
      if (e instanceof LineError) fail(e.message, startLine, currentLine, e.instruction);
      throw e;
    }

    if (canContainHeredoc(node) && line.includes('<<')) {
      let docs: ReturnType<typeof heredocsFromLine>;
      try {
        docs = heredocsFromLine(line);
      } catch (e) {
        if (e instanceof HeredocSyntaxError) fail(e.message, startLine, currentLine, node.keyword.toUpperCase());
        throw e;
      }
      for (const doc of docs) {
        let terminated = false;
        let content = '';
        for (let body = scan(); body !== undefined; body = scan()) {
          currentLine++;
          let candidate = trimNewline(body);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += body;
        }
        if (!terminated) fail('unterminated heredoc', startLine, currentLine, node.keyword.toUpperCase());
        node.heredocs.push({ ...doc, content });
      }
    }

    setRange(node, { startLine, endLine: currentLine });
    nodes.push(node);
    comments = [];
  }

  if (nodes.length === 0) fail('file with no instructions', currentLine);

  return {
    file,
    nodes,
    escapeToken: d.escapeToken,
    directives: d.found,
    warnings,
    range: { startLine: nodes[0]!.range.startLine, endLine: nodes[nodes.length - 1]!.range.endLine },
    source,
  };
}

function setRange(node: DockerfileNode, range: SourceRange): void {
  for (let n: DockerfileNode | undefined = node; n; n = n.onbuild) n.range = { ...range };
}

const HEREDOC_KEYWORDS = new Set(['add', 'copy', 'run']);

function canContainHeredoc(node: DockerfileNode): boolean {
  const n = node.keyword.toLowerCase() === 'onbuild' && node.onbuild ? node.onbuild : node;
  return HEREDOC_KEYWORDS.has(n.keyword.toLowerCase()) && !n.json;
}

/** An error while turning one logical line into a node (located by the caller). */
class LineError extends Error {
  constructor(
    message: string,
    readonly instruction?: string,
  ) {
    super(message);
  }
}

/** One logical line → node. ONBUILD nesting is handled iteratively. */
function nodeFromLine(line: string, escape: string, comments: string[]): DockerfileNode {
  let root: DockerfileNode | undefined;
  let parent: DockerfileNode | undefined;
  let rest: string | undefined = line;
  let first = true;
  while (rest !== undefined) {
    const [keyword, flags, args] = splitCommand(rest);
    const node: DockerfileNode = {
      keyword,
      flags,
      args: [],
      json: false,
      original: rest,
      range: { startLine: 0, endLine: 0 },
      heredocs: [],
      comments: first ? comments : [],
    };
    first = false;
    if (parent) parent.onbuild = node;
    else root = node;
    rest = undefined;
    const kw = keyword.toLowerCase();
    if (kw === 'onbuild') {
      if (args !== '') {
        parent = node;
        rest = args;
      }
      continue;
    }
    try {
      dispatch(kw, args, escape, node);
    } catch (e) {
      if (e instanceof LineError) throw new LineError(e.message, e.instruction ?? keyword.toUpperCase());
      throw e;
    }
  }
  return root!;
}

const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

function dispatch(kw: string, rest: string, escape: string, node: DockerfileNode): void {
  switch (kw) {
    case 'add':
    case 'copy':
    case 'volume':
      return maybeJsonToList(rest, node);
    case 'arg':
      node.args = parseWords(rest, escape);
      return;
    case 'cmd':
    case 'entrypoint':
    case 'run':
    case 'shell':
      return maybeJson(rest, node);
    case 'env':
    case 'label':
      node.args = parseNameValue(rest, kw === 'env' ? 'ENV' : 'LABEL', escape);
      return;
    case 'expose':
    case 'from':
      node.args = rest === '' ? [] : splitN(rest, RE_WHITESPACE, -1);
      return;
    case 'healthcheck':
      return healthConfig(rest, node);
    case 'maintainer':
    case 'stopsignal':
    case 'user':
    case 'workdir':
      node.args = rest === '' ? [] : [rest];
      return;
    default:
      // Unknown instructions parse (BuildKit keeps an empty argument); typing refuses them.
      node.args = [''];
  }
}

function maybeJson(rest: string, node: DockerfileNode): void {
  if (rest === '') return;
  const j = decodeJsonArray(rest);
  if (j.kind === 'not-strings') throw new LineError(NOT_STRING_ARRAY);
  if (j.kind === 'strings') {
    node.args = j.values;
    node.json = true;
    return;
  }
  node.args = [rest];
}

function maybeJsonToList(rest: string, node: DockerfileNode): void {
  const j = decodeJsonArray(rest);
  if (j.kind === 'not-strings') throw new LineError(NOT_STRING_ARRAY);
  if (j.kind === 'strings') {
    node.args = j.values;
    node.json = true;
    return;
  }
  node.args = rest === '' ? [] : splitN(rest, RE_WHITESPACE, -1);
}

function healthConfig(rest: string, node: DockerfileNode): void {
  let sep = 0;
  while (sep < rest.length && !isSpace(rest.charCodeAt(sep))) sep++;
  let nxt = sep;
  while (nxt < rest.length && isSpace(rest.charCodeAt(nxt))) nxt++;
  if (sep === 0) return;
  const sub: DockerfileNode = { ...node, args: [], json: false };
  maybeJson(rest.slice(nxt), sub);
  node.args = [rest.slice(0, sep), ...sub.args];
  node.json = sub.json;
}

/**
 * ENV/LABEL: `key value sep` triples. The legacy form `KEY rest of line` gives
 * one triple with sep ""; the `k=v …` form gives one triple per pair with sep "=".
 */
function parseNameValue(rest: string, key: string, escape: string): string[] {
  const words = parseWords(rest, escape);
  if (words.length === 0) return [];
  if (!words[0]!.includes('=')) {
    const parts = splitN(rest, RE_WHITESPACE, 2);
    if (parts.length < 2) throw new LineError(`${key} must have two arguments`);
    return [parts[0]!, parts[1]!, ''];
  }
  const out: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq === -1) throw new LineError(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    out.push(w.slice(0, eq), w.slice(eq + 1), '=');
  }
  return out;
}

/**
 * Split an argument string into words on whitespace, keeping quotes and
 * escape characters in the words (they are processed later, by expansion).
 */
export function parseWords(rest: string, escape = '\\'): string[] {
  const words: string[] = [];
  let inWord = false;
  let inQuote = false;
  let quote = '';
  let word = '';
  let blankOK = false;
  const chars = Array.from(rest);
  for (let pos = 0; pos <= chars.length; pos++) {
    const end = pos === chars.length;
    let ch = end ? '' : chars[pos]!;
    if (!inWord && !inQuote) {
      if (end) break;
      if (isSpace(ch.charCodeAt(0))) continue;
      inWord = true;
    }
    if (end) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (inWord) {
      if (isSpace(ch.charCodeAt(0))) {
        inWord = false;
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        inWord = false;
        inQuote = true;
      }
      if (ch === escape) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos]!;
      }
      word += ch;
      continue;
    }
    // in a quote
    if (ch === quote) {
      inQuote = false;
      inWord = true;
    }
    if (ch === escape && quote !== "'") {
      if (pos + 1 === chars.length) {
        inQuote = false;
        inWord = true;
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos]!;
    }
    word += ch;
  }
  return words;
}

/** Split a logical line into keyword, `--flag` words and the rest (trimmed). */
function splitCommand(line: string): [string, string[], string] {
  const parts = splitN(trimSpace(line), RE_WHITESPACE, 2);
  if (parts.length < 2) return [parts[0]!, [], ''];
  const [args, flags] = extractFlags(parts[1]!);
  return [parts[0]!, flags, trimSpace(args)];
}

/** Leading `--x=y` words (quotes and backslashes processed); `--` alone ends them. */
function extractFlags(line: string): [string, string[]] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const end = pos === line.length;
    let ch = end ? '' : line[pos]!;
    if (phase === 'spaces') {
      if (end) break;
      if (isSpace(ch.charCodeAt(0))) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return [line.slice(pos), words];
      phase = 'word';
    }
    if (end) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch.charCodeAt(0))) {
        phase = 'spaces';
        if (word === '--') return [line.slice(pos), words];
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
      ch = line[pos]!;
    }
    word += ch;
  }
  return ['', words];
}
