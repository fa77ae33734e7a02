import { HostError } from '../errors.js';
import { runToolCollect, ToolStartError } from '../util/tool-launcher.js';

/**
 * Extended attributes through Debian's `attr` tools (Node has no xattr API):
 * one setfattr/getfattr process per batch, never following symlinks (-h).
 * Paths are absolute host paths; callers guarantee they lie inside their root.
 */

const TIMEOUT_MS = 120_000;

function escapePath(p: string): string {
  // getfattr dump escaping: octal for control chars, backslash and non-ASCII bytes.
  let out = '';
  for (const b of Buffer.from(p, 'utf8')) {
    out += b < 0x21 || b > 0x7e || b === 0x5c || b === 0x3d ? `\\${b.toString(8).padStart(3, '0')}` : String.fromCharCode(b);
  }
  return out;
}

function unescapePath(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(...Buffer.from(s[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

async function run(cmd: string, args: string[], input: Buffer | undefined): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  try {
    const r = await runToolCollect([cmd, ...args], { ...(input ? { input } : {}), timeoutMs: TIMEOUT_MS });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr.toString() };
  } catch (e) {
    if (e instanceof ToolStartError && e.code === 'ENOENT') {
      throw new HostError(`Cannot run "${cmd}": not installed`, { hint: 'Install the "attr" package (apt-get install attr) for extended attributes.', cause: e });
    }
    throw e;
  }
}

/** overlay's own bookkeeping (user.overlay.*, trusted.overlay.*): never copied along with a file. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('user.overlay.') || name.startsWith('trusted.overlay.');
}

export interface XattrSet {
  path: string;
  attrs: Array<[string, Buffer]>;
}

/**
 * Set xattrs on many paths with one `setfattr -h --restore=-`. Failures for a
 * single path (no privilege for trusted.*, user.* on a symlink, …) come back as
 * messages, not throws.
 */
export async function setXattrs(items: XattrSet[]): Promise<string[]> {
  const list = items.filter((i) => i.attrs.length > 0);
  if (list.length === 0) return [];
  let dump = '';
  for (const item of list) {
    dump += `# file: ${escapePath(item.path)}\n`;
    for (const [name, value] of item.attrs) dump += `${name}=0x${value.toString('hex')}\n`;
    dump += '\n';
  }
  const r = await run('setfattr', ['-h', '--restore=-'], Buffer.from(dump, 'utf8'));
  if (r.code === 0) return [];
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  return lines.length > 0 ? lines : [`setfattr exited with ${r.code}`];
}

const ARG_BUDGET = 64 * 1024;

/**
 * All xattrs of each path (not following symlinks), batched into as few
 * getfattr runs as the argument budget allows. Paths without xattrs are absent.
 */
export async function getXattrs(paths: string[]): Promise<Map<string, Map<string, Buffer>>> {
  const result = new Map<string, Map<string, Buffer>>();
  let batch: string[] = [];
  let budget = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const r = await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', ...batch], undefined);
    parseDump(r.stdout.toString('utf8'), result);
    batch = [];
    budget = 0;
  };
  for (const p of paths) {
    batch.push(p);
    budget += Buffer.byteLength(p) + 1;
    if (budget > ARG_BUDGET) await flush();
  }
  await flush();
  return result;
}

/**
 * Every xattr of every path under `root` (itself included), from one recursive
 * `getfattr` that follows no symlink. Paths without xattrs are absent. Unlike
 * getXattrs, a getfattr failure throws: callers derive overlay's opaque marks
 * from it, and a missed mark would let lower content show through a layer.
 */
export async function getXattrsUnder(root: string): Promise<Map<string, Map<string, Buffer>>> {
  const r = await run('getfattr', ['-R', '-h', '--physical', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', root], undefined);
  if (r.code !== 0) throw new HostError(`Cannot read the extended attributes under "${root}": getfattr exited with ${r.code}: ${r.stderr.trim()}`);
  const result = new Map<string, Map<string, Buffer>>();
  parseDump(r.stdout.toString('utf8'), result);
  return result;
}

function parseDump(text: string, into: Map<string, Map<string, Buffer>>): void {
  let current: Map<string, Buffer> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      into.set(unescapePath(line.slice('# file: '.length)), current);
    } else if (current && line.includes('=')) {
      const eq = line.indexOf('=');
      const name = line.slice(0, eq);
      const raw = line.slice(eq + 1);
      let value: Buffer;
      if (raw.startsWith('0x')) value = Buffer.from(raw.slice(2), 'hex');
      else if (raw.startsWith('0s')) value = Buffer.from(raw.slice(2), 'base64');
      else value = Buffer.from(raw.replace(/^"|"$/g, ''), 'utf8');
      current.set(name, value);
    } else if (current && line !== '') {
      // An attribute without a value ("name" alone) is empty.
      current.set(line, Buffer.alloc(0));
    }
  }
}
