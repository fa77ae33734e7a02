import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A sandbox for path-escape tests: `<dir>/outside` is a sentinel tree (files,
 * a dir, a symlink, xattrs) and `<dir>/target` the extraction root. snapshot()
 * records everything outside the target (plus a few host paths) so a test can
 * assert that nothing there changed.
 */
export interface Sandbox {
  dir: string;
  outside: string;
  target: string;
  /** A unique file name crafted entries use, searched for afterwards. */
  pwned: string;
  snapshot(): string;
  /** Paths outside the target whose name contains `pwned`. */
  escapes(): string[];
  cleanup(): void;
}

const HOST_PATHS = ['/', '/etc', '/etc/shadow', '/etc/passwd', '/root', '/bin/sh'];

function describe(p: string): string {
  const st = lstatSync(p, { bigint: true });
  let extra = '';
  if (st.isFile()) extra = createHash('sha256').update(readFileSync(p)).digest('hex');
  else if (st.isSymbolicLink()) extra = `-> ${readlinkSync(p)}`;
  return `${st.mode.toString(8)} ${st.uid}:${st.gid} n${st.nlink} s${st.size} m${st.mtimeNs} i${st.ino} ${extra}`;
}

function walk(dir: string, skip: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (p === skip) continue;
    out.push(`${p} ${describe(p)}`);
    if (lstatSync(p).isDirectory()) walk(p, skip, out);
  }
}

export function makeSandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-escape-'));
  const outside = join(dir, 'outside');
  const target = join(dir, 'target');
  mkdirSync(join(outside, 'dir'), { recursive: true });
  mkdirSync(target);
  writeFileSync(join(outside, 'secret'), 'top secret\n', { mode: 0o600 });
  writeFileSync(join(outside, 'shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
  writeFileSync(join(outside, 'dir', 'inner'), 'inner\n');
  symlinkSync('secret', join(outside, 'link-to-secret'));
  execFileSync('setfattr', ['-n', 'user.sentinel', '-v', 'keep', join(outside, 'secret')]);
  const pwned = `kiln-pwned-${randomBytes(6).toString('hex')}`;
  const snapshot = (): string => {
    const lines: string[] = [];
    walk(dir, target, lines);
    lines.push(execFileSync('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', outside]).toString());
    for (const p of HOST_PATHS) lines.push(`${p} ${describe(p)}`);
    return lines.join('\n');
  };
  const escapes = (): string[] => {
    const found: string[] = [];
    const all: string[] = [];
    walk(dir, target, all);
    for (const l of all) if (l.includes(pwned)) found.push(l);
    for (const d of ['/', '/tmp', '/etc', '/root', tmpdir()]) if (existsSync(join(d, pwned))) found.push(join(d, pwned));
    return found;
  };
  return { dir, outside, target, pwned, snapshot, escapes, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
