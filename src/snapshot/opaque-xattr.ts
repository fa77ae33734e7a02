import { runTool } from './run-tool.js';

/** The xattr overlay (mounted with `userxattr`) reads and writes to mark an opaque directory. */
export const OPAQUE_XATTR = 'user.overlay.opaque';
const TRUSTED_OPAQUE_XATTR = 'trusted.overlay.opaque';

/** getfattr quotes names with backslash-octal escapes; undo that (bytes → UTF-8). */
function unquote(s: string): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const m = s[i] === '\\' ? /^[0-7]{3}/.exec(s.slice(i + 1)) : null;
    if (m) {
      bytes.push(parseInt(m[0], 8));
      i += 3;
    } else if (s[i] === '\\' && s[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else {
      for (const b of Buffer.from(s[i]!, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parse `getfattr -d` output into path → (name → value). */
export function parseGetfattr(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      out.set(unquote(line.slice(8)), current);
    } else if (current && line) {
      const eq = line.indexOf('=');
      const name = eq === -1 ? line : line.slice(0, eq);
      let value = eq === -1 ? '' : line.slice(eq + 1);
      if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      current.set(name, value);
    }
  }
  return out;
}

function batches(paths: string[], maxChars = 64 * 1024): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let size = 0;
  for (const p of paths) {
    if (cur.length && size + p.length + 1 > maxChars) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(p);
    size += p.length + 1;
  }
  if (cur.length) out.push(cur);
  return out;
}

async function dump(args: string[], paths: string[], pattern: string): Promise<Map<string, Map<string, string>>> {
  const all = new Map<string, Map<string, string>>();
  for (const batch of batches(paths)) {
    const { stdout } = await runTool(['getfattr', '-h', '--absolute-names', '--physical', '-e', 'text', '-m', pattern, '-d', ...args, '--', ...batch], {
      timeoutMs: 60_000,
    });
    for (const [k, v] of parseGetfattr(stdout)) all.set(k, v);
  }
  return all;
}

/**
 * Which of `dirs` (absolute paths) are overlay-opaque: user.overlay.opaque (or
 * trusted.overlay.opaque) = "y". One getfattr process per 64 KiB of paths.
 */
export async function opaqueDirs(dirs: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  if (!dirs.length) return found;
  for (const [path, attrs] of await dump([], dirs, '^(user|trusted)\\.overlay\\.opaque$')) {
    if (attrs.get(OPAQUE_XATTR) === 'y' || attrs.get(TRUSTED_OPAQUE_XATTR) === 'y') found.add(path);
  }
  return found;
}

/** The paths an xattr dump marks overlay-opaque: user.overlay.opaque or trusted.overlay.opaque = "y". */
export function opaqueIn(xattrs: Map<string, Map<string, Buffer>>): Set<string> {
  const found = new Set<string>();
  for (const [path, attrs] of xattrs) {
    if (attrs.get(OPAQUE_XATTR)?.toString() === 'y' || attrs.get(TRUSTED_OPAQUE_XATTR)?.toString() === 'y') found.add(path);
  }
  return found;
}

/**
 * A layer extracted by a tool that marks opaque dirs with trusted.overlay.opaque
 * (what overlay uses without `userxattr`): copy the mark to user.overlay.opaque,
 * which our mounts read. Needs real root to see trusted.*; a no-op otherwise.
 */
export async function normaliseOpaqueMarks(root: string): Promise<number> {
  const marked = await dump(['-R'], [root], '^trusted\\.overlay\\.opaque$');
  let n = 0;
  for (const [path, attrs] of marked) {
    if (attrs.get(TRUSTED_OPAQUE_XATTR) !== 'y') continue;
    await runTool(['setfattr', '-h', '-n', OPAQUE_XATTR, '-v', 'y', '--', path]);
    await runTool(['setfattr', '-h', '-x', TRUSTED_OPAQUE_XATTR, '--', path]);
    n++;
  }
  return n;
}
