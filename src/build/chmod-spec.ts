import { KilnError } from '../errors.js';

/** A parsed --chmod value: an octal mode, or a symbolic one applied per file. */
export type ModeSpec = { kind: 'octal'; mode: number } | { kind: 'symbolic'; clauses: SymbolicClause[]; text: string };

interface SymbolicClause {
  who: number; // mask of affected bits (u=0o4700 g=0o2070 o=0o1007 a=all)
  op: '+' | '-' | '=';
  perms: string; // subset of rwxXst
}

export function invalidChmod(value: string): KilnError {
  return new KilnError('DOCKERFILE_INVALID', `invalid chmod parameter: '${value}'. it should be octal string and between 0 and 07777`);
}

/** Parse --chmod as BuildKit does: octal 0..07777, else chmod(1) symbolic syntax. */
export function parseModeSpec(value: string): ModeSpec {
  if (/^[0-9]+$/.test(value)) {
    if (!/^[0-7]+$/.test(value)) throw invalidChmod(value);
    const mode = parseInt(value, 8);
    if (mode > 0o7777) throw invalidChmod(value);
    return { kind: 'octal', mode };
  }
  const clauses: SymbolicClause[] = [];
  for (const part of value.split(',')) {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(part);
    if (!m) throw invalidChmod(value);
    let who = 0;
    for (const w of m[1]!) who |= w === 'u' ? 0o4700 : w === 'g' ? 0o2070 : w === 'o' ? 0o1007 : 0o7777;
    if (who === 0) who = 0o7777;
    clauses.push({ who, op: m[2] as '+' | '-' | '=', perms: m[3]! });
  }
  return { kind: 'symbolic', clauses, text: value };
}

/** The new permission bits of a file with `mode` (and type dir or not) under `spec`. */
export function applyModeSpec(spec: ModeSpec, mode: number, isDir: boolean): number {
  if (spec.kind === 'octal') return spec.mode;
  let m = mode & 0o7777;
  for (const c of spec.clauses) {
    let bits = 0;
    for (const p of c.perms) {
      if (p === 'r') bits |= 0o444;
      else if (p === 'w') bits |= 0o222;
      else if (p === 'x') bits |= 0o111;
      else if (p === 'X') {
        if (isDir || (mode & 0o111) !== 0) bits |= 0o111;
      } else if (p === 's') bits |= 0o6000;
      else if (p === 't') bits |= 0o1000;
    }
    bits &= c.who;
    if (c.op === '+') m |= bits;
    else if (c.op === '-') m &= ~bits;
    else m = (m & ~(c.who & 0o7777)) | bits;
  }
  return m & 0o7777;
}
