/**
 * Small text helpers shared by the Dockerfile parser modules. They reproduce
 * the Go standard-library predicates BuildKit's parser relies on, so that
 * kiln splits and trims exactly where BuildKit does.
 */

/** Go's unicode.IsSpace for one UTF-16 code unit (every Unicode space is in the BMP). */
export function isSpace(c: number): boolean {
  if (c <= 0xff) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0x85 || c === 0xa0;
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/** strings.TrimLeftFunc(s, unicode.IsSpace) */
export function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return i === 0 ? s : s.slice(i);
}

/** strings.TrimSpace */
export function trimSpace(s: string): string {
  let i = 0;
  let j = s.length;
  while (i < j && isSpace(s.charCodeAt(i))) i++;
  while (j > i && isSpace(s.charCodeAt(j - 1))) j--;
  return i === 0 && j === s.length ? s : s.slice(i, j);
}

/** BuildKit's reWhitespace: `[\t\v\f\r ]+` (no newline, no Unicode spaces). */
export const RE_WHITESPACE = /[\t\v\f\r ]+/;

/** Go's regexp.Split(s, n) for a pattern that never matches the empty string. */
export function splitN(s: string, re: RegExp, n: number): string[] {
  if (n === 0) return [];
  if (s === '') return [''];
  const g = new RegExp(re.source, 'g');
  const out: string[] = [];
  let beg = 0;
  let m: RegExpExecArray | null;
  while ((m = g.exec(s)) !== null) {
    if (n > 0 && out.length === n - 1) break;
    out.push(s.slice(beg, m.index));
    beg = m.index + m[0].length;
  }
  out.push(s.slice(beg));
  return out;
}

/** Go's strconv.Quote: double-quoted, Go escapes, printable non-ASCII kept as is. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (c) {
      case 0x07: out += '\\a'; continue;
      case 0x08: out += '\\b'; continue;
      case 0x0c: out += '\\f'; continue;
      case 0x0a: out += '\\n'; continue;
      case 0x0d: out += '\\r'; continue;
      case 0x09: out += '\\t'; continue;
      case 0x0b: out += '\\v'; continue;
      case 0x22: out += '\\"'; continue;
      case 0x5c: out += '\\\\'; continue;
    }
    if (c < 0x20 || c === 0x7f) {
      out += '\\x' + c.toString(16).padStart(2, '0');
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // A lone surrogate is not valid UTF-8; Go would see the replacement character.
      out += '\\ufffd';
    } else if (c < 0x7f || isGoPrintable(ch, c)) {
      out += ch;
    } else if (c < 0x10000) {
      out += '\\u' + c.toString(16).padStart(4, '0');
    } else {
      out += '\\U' + c.toString(16).padStart(8, '0');
    }
  }
  return out + '"';
}

const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** unicode.IsPrint: letters, marks, numbers, punctuation, symbols and U+0020 only. */
function isGoPrintable(ch: string, c: number): boolean {
  if (c === 0x20) return true;
  return !NOT_PRINTABLE.test(ch);
}

const GO_SPACE = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;

/**
 * Match a parser-directive line `<prefix> name = value` as BuildKit's
 * `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` does, in linear time
 * (the regex backtracks quadratically on long runs of spaces).
 */
export function matchDirectiveLine(line: string, prefix: string): { name: string; value: string } | undefined {
  if (!line.startsWith(prefix) || line.includes('\n')) return undefined;
  let i = prefix.length;
  while (i < line.length && GO_SPACE(line.charCodeAt(i))) i++;
  const m = /^[a-zA-Z][a-zA-Z0-9]*/.exec(line.slice(i, i + 256));
  if (!m) return undefined;
  const name = m[0];
  i += name.length;
  if (name.length === 256) while (i < line.length && /[a-zA-Z0-9]/.test(line[i]!)) i++;
  const nameEnd = i;
  while (i < line.length && GO_SPACE(line.charCodeAt(i))) i++;
  if (line[i] !== '=') return undefined;
  i++;
  const afterEq = i;
  while (i < line.length && GO_SPACE(line.charCodeAt(i))) i++;
  let end = line.length;
  while (end > i && GO_SPACE(line.charCodeAt(end - 1))) end--;
  if (end > i) return { name: line.slice(prefix.length, nameEnd).replace(/^[\t\n\f\r ]+/, ''), value: line.slice(i, end) };
  // only spaces after "=": the regex gives the last one back to the value
  if (line.length > afterEq) return { name: line.slice(prefix.length, nameEnd).replace(/^[\t\n\f\r ]+/, ''), value: line[line.length - 1]! };
  return undefined;
}
