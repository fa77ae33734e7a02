/**
 * Parse a WWW-Authenticate header (RFC 7235) into challenges:
 *   Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"
 * Parameter names are lowercased; quoted values unescaped.
 */
export interface AuthChallenge {
  scheme: string; // lowercase: "basic", "bearer"
  params: Record<string, string>;
}

export function parseWwwAuthenticate(header: string | string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: AuthChallenge[] = [];
  for (const value of values) {
    let i = 0;
    const s = value;
    let current: AuthChallenge | undefined;
    while (i < s.length) {
      while (i < s.length && (s[i] === ' ' || s[i] === ',')) i++;
      const tokStart = i;
      while (i < s.length && /[A-Za-z0-9!#$%&'*+.^_`|~-]/.test(s[i]!)) i++;
      const tok = s.slice(tokStart, i);
      if (!tok) {
        i++;
        continue;
      }
      let j = i;
      while (j < s.length && s[j] === ' ') j++;
      if (s[j] === '=') {
        // a parameter of the current challenge
        j++;
        while (j < s.length && s[j] === ' ') j++;
        let val = '';
        if (s[j] === '"') {
          j++;
          while (j < s.length && s[j] !== '"') {
            if (s[j] === '\\' && j + 1 < s.length) j++;
            val += s[j];
            j++;
          }
          j++;
        } else {
          const vs = j;
          while (j < s.length && s[j] !== ',' && s[j] !== ' ') j++;
          val = s.slice(vs, j);
        }
        if (current) current.params[tok.toLowerCase()] = val;
        i = j;
      } else {
        current = { scheme: tok.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}
