import { KilnError } from '../errors.js';

/**
 * POSIX (ustar + PAX) tar headers, encode and decode. Our own codec rather
 * than tar-stream's: PAX values must stay bytes (SCHILY.xattr.security.capability
 * is binary and tar-stream decodes PAX records as UTF-8, losing it), and the
 * reader needs hard limits on every header an untrusted layer can inflate.
 */

export const BLOCK = 512;

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  /** Path as written in the archive (not normalised). */
  name: string;
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch, may be fractional (PAX). */
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from SCHILY.xattr.* / LIBARCHIVE.xattr.* records, values as bytes. */
  xattrs: Map<string, Buffer>;
}

const TYPE_BY_FLAG: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};
const FLAG_BY_TYPE: Record<EntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

export function unsafeTar(message: string): KilnError {
  return new KilnError('LAYER_INVALID_TAR', message, { hint: 'The layer is corrupt or crafted; it was not applied.' });
}

// ---------------------------------------------------------------- decode

function readString(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

/** Octal (NUL/space terminated) or GNU base-256 numbers; negative numbers are refused. */
export function readNumber(buf: Buffer, off: number, len: number, field: string): number {
  const first = buf[off]!;
  if (first & 0x80) {
    if (first === 0xff) throw unsafeTar(`Cannot read tar header: negative ${field}`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + buf[off + i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw unsafeTar(`Cannot read tar header: ${field} too large`);
    }
    return v;
  }
  let s = buf.toString('latin1', off, off + len);
  s = s.replace(/[\0 ].*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw unsafeTar(`Cannot read tar header: invalid octal ${field} "${s}"`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw unsafeTar(`Cannot read tar header: ${field} too large`);
  return v;
}

export function isZeroBlock(buf: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

export function checksumOk(buf: Buffer): boolean {
  const want = readNumber(buf, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : buf[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

export interface RawHeader {
  flag: string;
  name: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

/** Decode one 512-byte header block (checksum verified). */
export function decodeRaw(buf: Buffer): RawHeader {
  if (!checksumOk(buf)) throw unsafeTar('Cannot read tar header: bad checksum');
  const magic = buf.toString('latin1', 257, 263);
  const ustar = magic === 'ustar\0';
  let name = readString(buf, 0, 100);
  if (ustar && buf[345] !== 0) name = `${readString(buf, 345, 155)}/${name}`;
  return {
    flag: String.fromCharCode(buf[156]!),
    name,
    linkname: readString(buf, 157, 100),
    mode: readNumber(buf, 100, 8, 'mode') & 0o7777,
    uid: readNumber(buf, 108, 8, 'uid'),
    gid: readNumber(buf, 116, 8, 'gid'),
    size: readNumber(buf, 124, 12, 'size'),
    mtime: readNumber(buf, 136, 12, 'mtime'),
    uname: readString(buf, 265, 32),
    gname: readString(buf, 297, 32),
    devmajor: readNumber(buf, 329, 8, 'devmajor'),
    devminor: readNumber(buf, 337, 8, 'devminor'),
  };
}

export function entryType(flag: string, name: string): EntryType {
  const t = TYPE_BY_FLAG[flag];
  if (t === undefined) throw unsafeTar(`Cannot apply tar entry "${name}": unsupported type flag ${JSON.stringify(flag)}`);
  return t;
}

/** Parse PAX records "<len> <key>=<value>\n"; values stay bytes. */
export function decodePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break; // NUL padding some writers leave
    const sp = buf.indexOf(0x20, pos);
    if (sp === -1 || sp - pos > 20) throw unsafeTar('Cannot read PAX header: malformed record length');
    const lenStr = buf.toString('latin1', pos, sp);
    if (!/^[0-9]+$/.test(lenStr)) throw unsafeTar('Cannot read PAX header: malformed record length');
    const len = Number(lenStr);
    const end = pos + len;
    if (len < 5 || end > buf.length || buf[end - 1] !== 0x0a) throw unsafeTar('Cannot read PAX header: record overruns the header');
    const eq = buf.indexOf(0x3d, sp + 1);
    if (eq === -1 || eq >= end) throw unsafeTar('Cannot read PAX header: record without "="');
    out.set(buf.toString('utf8', sp + 1, eq), buf.subarray(eq + 1, end - 1));
    pos = end;
  }
  return out;
}

// ---------------------------------------------------------------- encode

function writeString(buf: Buffer, s: string, off: number, len: number): void {
  buf.write(s, off, len, 'utf8');
}

function fitsOctal(v: number, len: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < 8 ** (len - 1);
}

function writeOctal(buf: Buffer, v: number, off: number, len: number): void {
  buf.write(v.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

function headerBlock(h: { name: string; flag: string; mode: number; uid: number; gid: number; size: number; mtime: number; linkname: string; devmajor: number; devminor: number }): Buffer {
  const buf = Buffer.alloc(BLOCK);
  writeString(buf, h.name, 0, 100);
  writeOctal(buf, h.mode, 100, 8);
  writeOctal(buf, h.uid, 108, 8);
  writeOctal(buf, h.gid, 116, 8);
  writeOctal(buf, h.size, 124, 12);
  writeOctal(buf, h.mtime, 136, 12);
  buf.write(h.flag, 156, 1, 'latin1');
  writeString(buf, h.linkname, 157, 100);
  buf.write('ustar\0' + '00', 257, 8, 'latin1');
  writeOctal(buf, h.devmajor, 329, 8);
  writeOctal(buf, h.devminor, 337, 8);
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += buf[i]!;
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return buf;
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function isPlainAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

export interface EncodeHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole seconds. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Array<[string, Buffer]>;
}

/**
 * Encode one entry's header blocks: a PAX 'x' header first when a value does
 * not fit ustar (long or non-ASCII names, big ids or sizes) or xattrs exist,
 * then the ustar header. uname/gname are left empty (ids are what layers mean).
 */
export function encodeHeader(h: EncodeHeader): Buffer {
  const records: Buffer[] = [];
  const linkname = h.linkname ?? '';
  let name = h.name;
  if (Buffer.byteLength(name) > 100 || !isPlainAscii(name)) {
    records.push(paxRecord('path', Buffer.from(name, 'utf8')));
    name = truncateUtf8(name, 100);
  }
  let link = linkname;
  if (Buffer.byteLength(link) > 100 || !isPlainAscii(link)) {
    records.push(paxRecord('linkpath', Buffer.from(link, 'utf8')));
    link = truncateUtf8(link, 100);
  }
  const num = (key: string, v: number, len: number): number => {
    if (fitsOctal(v, len)) return v;
    records.push(paxRecord(key, Buffer.from(String(v), 'latin1')));
    return 0;
  };
  const uid = num('uid', h.uid, 8);
  const gid = num('gid', h.gid, 8);
  const size = num('size', h.size, 12);
  const mtime = fitsOctal(h.mtime, 12) ? h.mtime : 0;
  if (mtime !== h.mtime) records.push(paxRecord('mtime', Buffer.from(String(h.mtime), 'latin1')));
  for (const [k, v] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const main = headerBlock({
    name,
    flag: FLAG_BY_TYPE[h.type],
    mode: h.mode & 0o7777,
    uid,
    gid,
    size,
    mtime,
    linkname: link,
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  });
  if (records.length === 0) return main;
  const pax = Buffer.concat(records);
  const paxName = truncateUtf8(`PaxHeaders/${name}`, 100);
  const paxHead = headerBlock({ name: paxName, flag: 'x', mode: 0o644, uid: 0, gid: 0, size: pax.length, mtime: 0, linkname: '', devmajor: 0, devminor: 0 });
  return Buffer.concat([paxHead, pax, Buffer.alloc(padding(pax.length)), main]);
}

function truncateUtf8(s: string, max: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return s;
  // Keep only ASCII so a cut never splits a character.
  return b.subarray(0, max).toString('latin1').replace(/[^\x20-\x7e]/g, '_');
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
