/**
 * Build tar archives byte by byte for tests, including malformed and hostile
 * ones no well-behaved writer would produce. Written independently of
 * src/layer/tar-header.ts so a bug there cannot hide in both.
 */

export type CraftType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';
const FLAGS: Record<CraftType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

export interface CraftEntry {
  name: string;
  type?: CraftType;
  /** Raw type flag, overrides `type` (e.g. 'L', 'x', 'S'). */
  flag?: string;
  data?: Buffer | string;
  /** Declared size, when it should differ from data.length. */
  size?: number;
  /** Raw 12-byte size field (e.g. base-256), overrides size. */
  sizeField?: Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** PAX records emitted in an 'x' header before this entry. */
  pax?: Record<string, string | Buffer>;
  /** GNU long name ('L' header) before this entry. */
  longName?: string;
  longLink?: string;
  /** Corrupt the checksum. */
  badChecksum?: boolean;
}

function octal(v: number, len: number): string {
  return v.toString(8).padStart(len - 1, '0') + '\0';
}

function block(e: { name: string; flag: string; mode: number; uid: number; gid: number; size: number; mtime: number; linkname: string; devmajor: number; devminor: number; sizeField?: Buffer; badChecksum?: boolean }): Buffer {
  const b = Buffer.alloc(512);
  Buffer.from(e.name, 'utf8').copy(b, 0, 0, 100);
  b.write(octal(e.mode, 8), 100, 'latin1');
  b.write(octal(e.uid, 8), 108, 'latin1');
  b.write(octal(e.gid, 8), 116, 'latin1');
  if (e.sizeField) e.sizeField.copy(b, 124, 0, 12);
  else b.write(octal(e.size, 12), 124, 'latin1');
  b.write(octal(e.mtime, 12), 136, 'latin1');
  b.write(e.flag, 156, 'latin1');
  Buffer.from(e.linkname, 'utf8').copy(b, 157, 0, 100);
  b.write('ustar\x0000', 257, 'latin1');
  b.write(octal(e.devmajor, 8), 329, 'latin1');
  b.write(octal(e.devminor, 8), 337, 'latin1');
  b.fill(' ', 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  if (e.badChecksum) sum += 1;
  b.write(octal(sum, 7) + ' ', 148, 'latin1');
  return b;
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

function paxBody(records: Record<string, string | Buffer>): Buffer {
  const out: Buffer[] = [];
  for (const [k, v] of Object.entries(records)) {
    const val = Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');
    const rest = Buffer.concat([Buffer.from(` ${k}=`), val, Buffer.from('\n')]);
    let n = rest.length;
    while (String(n).length + rest.length !== n) n = String(n).length + rest.length;
    out.push(Buffer.from(String(n)), rest);
  }
  return Buffer.concat(out);
}

function meta(flag: string, name: string, body: Buffer): Buffer {
  return Buffer.concat([
    block({ name, flag, mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, linkname: '', devmajor: 0, devminor: 0 }),
    body,
    pad(body.length),
  ]);
}

export function craftEntry(e: CraftEntry): Buffer {
  const parts: Buffer[] = [];
  if (e.pax) parts.push(meta('x', 'PaxHeader', paxBody(e.pax)));
  if (e.longName !== undefined) parts.push(meta('L', '././@LongLink', Buffer.from(e.longName + '\0')));
  if (e.longLink !== undefined) parts.push(meta('K', '././@LongLink', Buffer.from(e.longLink + '\0')));
  const type = e.type ?? 'file';
  const data = e.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
  const size = e.size ?? data.length;
  parts.push(
    block({
      name: e.name,
      flag: e.flag ?? FLAGS[type],
      mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      size,
      mtime: e.mtime ?? 1_600_000_000,
      linkname: e.linkname ?? '',
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
      ...(e.sizeField ? { sizeField: e.sizeField } : {}),
      ...(e.badChecksum ? { badChecksum: true } : {}),
    }),
  );
  parts.push(data, pad(data.length));
  return Buffer.concat(parts);
}

/** A whole archive: entries then the two zero blocks (unless `end` is false). */
export function craftTar(entries: CraftEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts = entries.map(craftEntry);
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
