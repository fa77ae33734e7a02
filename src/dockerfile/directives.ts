/**
 * Directive detection without a full parse, as BuildKit's DetectSyntax /
 * ParseDirective do: `# key=value` lines at the top (a leading `#!` line is
 * skipped), and for `syntax` only also `// syntax=…` lines and a JSON object
 * `{"syntax": "…"}` making up the whole text.
 */
import { decodeDockerfile } from './parser.js';
import { matchDirectiveLine } from './text.js';

export interface DetectedDirective {
  /** The first word of the value (the frontend reference for `syntax`). */
  value: string;
  /** The whole value, options included. */
  cmdline: string;
  /** 1-based line; 0 for the JSON form without a shebang. */
  line: number;
}

const KNOWN = new Set(['syntax', 'escape', 'check']);

function scanDirectives(lines: string[], firstLine: number, prefix: '#' | '//'): Map<string, { value: string; line: number }> {
  const found = new Map<string, { value: string; line: number }>();
  let lineNo = firstLine;
  for (const line of lines) {
    lineNo++;
    const m = matchDirectiveLine(line, prefix);
    if (!m) break;
    const key = m.name.toLowerCase();
    if (!KNOWN.has(key)) break;
    if (found.has(key)) break; // a repeated directive is an error upstream: nothing more is read
    found.set(key, { value: m.value, line: lineNo });
  }
  return found;
}

function directive(key: string, input: string | Uint8Array, anyFormat: boolean): DetectedDirective | undefined {
  let text = decodeDockerfile(input);
  let firstLine = 0;
  const nl = text.indexOf('\n');
  if (text.startsWith('#!')) {
    text = nl === -1 ? '' : text.slice(nl + 1);
    firstLine = 1;
  }
  // bufio.ScanLines: split on \n, drop one trailing \r
  const lines = text === '' ? [] : text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '' && text.endsWith('\n')) lines.pop();
  const pick = (m: Map<string, { value: string; line: number }>): DetectedDirective | undefined => {
    const d = m.get(key);
    if (!d) return undefined;
    const sp = d.value.indexOf(' ');
    return { value: sp === -1 ? d.value : d.value.slice(0, sp), cmdline: d.value, line: d.line };
  };
  const hash = pick(scanDirectives(lines, firstLine, '#'));
  if (hash || !anyFormat) return hash;
  const slashes = pick(scanDirectives(lines, firstLine, '//'));
  if (slashes) return slashes;
  try {
    const obj: unknown = JSON.parse(text);
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
      const v = (obj as Record<string, unknown>)[key];
      if (typeof v === 'string') return { value: v, cmdline: v, line: firstLine };
    }
  } catch {
    // not JSON
  }
  return undefined;
}

/** The `syntax` directive in any of its forms. */
export function detectSyntax(input: string | Uint8Array): DetectedDirective | undefined {
  return directive('syntax', input, true);
}

/** Another directive (`check`, `escape`), `#` form only. */
export function detectDirective(key: 'check' | 'escape' | 'syntax', input: string | Uint8Array): DetectedDirective | undefined {
  return directive(key, input, false);
}

/** All `# name=value` directives of the leading block, in order (BuildKit's DirectiveParser.ParseAll). */
export function parseDirectives(input: string | Uint8Array): Array<{ name: string; value: string; line: number }> {
  const text = decodeDockerfile(input);
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  return [...scanDirectives(lines, 0, '#')].map(([name, d]) => ({ name, ...d }));
}
