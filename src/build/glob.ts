/**
 * Go's path.Match for one path component (what BuildKit uses for COPY
 * wildcards): `*` any run of non-"/" bytes, `?` one, `[a-z]` / `[^a-z]`
 * classes, `\` escapes the next character.
 */
export function hasWildcard(p: string): boolean {
  return /[*?[\\]/.test(p);
}

const cache = new Map<string, RegExp>();

export function componentRegExp(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (re) return re;
  let out = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) out += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) {
        out += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      let neg = false;
      if (body.startsWith('^') || body.startsWith('!')) {
        neg = true;
        body = body.slice(1);
      }
      out += `[${neg ? '^' : ''}${body.replace(/\\(.)/g, '\\$1').replace(/]/g, '\\]')}]`;
      i = end;
    } else out += escapeRe(c);
  }
  re = new RegExp(out + '$', 's');
  cache.set(pattern, re);
  return re;
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export function matchComponent(pattern: string, name: string): boolean {
  return componentRegExp(pattern).test(name);
}

/** Match a whole "/"-separated relative path against a pattern of the same depth. */
export function matchPath(pattern: string, path: string): boolean {
  const pp = pattern.split('/').filter((x) => x !== '' && x !== '.');
  const sp = path.split('/').filter((x) => x !== '' && x !== '.');
  if (pp.length !== sp.length) return false;
  return pp.every((p, i) => matchComponent(p, sp[i]!));
}
