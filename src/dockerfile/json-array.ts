/**
 * Exec-form recognition as BuildKit does it: the whole text must be one JSON
 * value (Go's json.Unmarshal: only JSON whitespace may follow it) and an array. Iterative, so deeply nested input cannot overflow the
 * stack; nesting deeper than Go's limit (10000) is a decode error.
 */
import { isSpace } from './text.js';

export type JsonArrayResult =
  | { kind: 'strings'; values: string[] }
  | { kind: 'not-strings' } // valid JSON array with a non-string element
  | { kind: 'invalid' }; // not a JSON array: caller falls back to shell form

const MAX_DEPTH = 10000;
/** true, false, null or a JSON number, anchored at lastIndex. */
const LITERAL = /true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

class JsonSyntax extends Error {}

export function decodeJsonArray(text: string): JsonArrayResult {
  let i = 0;
  const n = text.length;
  // BuildKit trims Unicode spaces (strings.TrimLeftFunc) before looking for '['.
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  if (text[i] !== '[') return { kind: 'invalid' };
  try {
    const values: string[] = [];
    let allStrings = true;
    // stack of open containers: '[' or '{'
    const stack: string[] = [];
    const skipWs = () => {
      while (i < n && isJsonSpace(text.charCodeAt(i))) i++;
    };
    const readString = (): string => {
      // text[i] === '"'
      i++;
      let out = '';
      for (;;) {
        if (i >= n) throw new JsonSyntax('unterminated string');
        const c = text.charCodeAt(i);
        if (c === 0x22) {
          i++;
          return out;
        }
        if (c < 0x20) throw new JsonSyntax('control character in string');
        if (c === 0x5c) {
          const e = text[i + 1];
          i += 2;
          switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
              const hex = text.slice(i, i + 4);
              if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new JsonSyntax('bad \\u escape');
              i += 4;
              let cp = parseInt(hex, 16);
              if (cp >= 0xd800 && cp < 0xdc00) {
                const m = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(text.slice(i, i + 6));
                if (m) {
                  i += 6;
                  out += String.fromCharCode(cp, parseInt(m[1]!, 16));
                  break;
                }
                cp = 0xfffd;
              } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                cp = 0xfffd;
              }
              out += String.fromCharCode(cp);
              break;
            }
            default:
              throw new JsonSyntax('bad escape');
          }
          continue;
        }
        out += text[i];
        i++;
      }
    };
    const readScalar = (): void => {
      LITERAL.lastIndex = i;
      const m = LITERAL.exec(text);
      if (!m) throw new JsonSyntax('invalid character');
      i += m[0].length;
    };

    // Parse a value at the current position; containers push onto the stack.
    // Returns when the top-level array closes.
    i++; // the opening '['
    stack.push('[');
    let expectValue = true; // after '[' or ',' (or ':')
    let first = true; // right after an opening bracket (empty container allowed)
    let inObjectKey = false;
    for (;;) {
      skipWs();
      if (i >= n) throw new JsonSyntax('unexpected end of JSON input');
      const top = stack[stack.length - 1]!;
      const ch = text[i]!;
      if (expectValue) {
        if (first && ((top === '[' && ch === ']') || (top === '{' && ch === '}'))) {
          i++;
          stack.pop();
          if (stack.length === 0) break;
          expectValue = false;
          first = false;
          continue;
        }
        first = false;
        if (top === '{' && inObjectKey) {
          if (ch !== '"') throw new JsonSyntax('object key must be a string');
          readString();
          skipWs();
          if (text[i] !== ':') throw new JsonSyntax('missing colon');
          i++;
          inObjectKey = false;
          continue;
        }
        const depth1 = stack.length === 1;
        if (ch === '[' || ch === '{') {
          if (stack.length >= MAX_DEPTH) throw new JsonSyntax('exceeded max depth');
          if (depth1) allStrings = false;
          stack.push(ch);
          i++;
          first = true;
          inObjectKey = ch === '{';
          continue;
        }
        if (ch === '"') {
          const s = readString();
          if (depth1) values.push(s);
        } else {
          readScalar();
          if (depth1) allStrings = false;
        }
        expectValue = false;
        continue;
      }
      // after a value: ',' or the closing bracket
      if (ch === ',') {
        i++;
        expectValue = true;
        inObjectKey = top === '{';
        continue;
      }
      if ((top === '[' && ch === ']') || (top === '{' && ch === '}')) {
        i++;
        stack.pop();
        if (stack.length === 0) break;
        continue;
      }
      throw new JsonSyntax('invalid character after element');
    }
    // json.Unmarshal (BuildKit since moby/buildkit#5107) refuses anything but
    // JSON whitespace after the value: `RUN ["ls"]junk` is shell form.
    skipWs();
    if (i < n) throw new JsonSyntax('invalid character after top-level value');
    return allStrings ? { kind: 'strings', values } : { kind: 'not-strings' };
  } catch (e) {
    if (e instanceof JsonSyntax) return { kind: 'invalid' };
    throw e;
  }
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
