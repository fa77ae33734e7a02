import {
  BLOCK,
  decodePax,
  decodeRaw,
  entryType,
  isZeroBlock,
  padding,
  unsafeTar,
  type TarHeader,
} from './tar-header.js';

/** Largest PAX or GNU long-name header a layer may carry (oversized headers are refused, not buffered). */
export const MAX_META_HEADER = 1024 * 1024;
const MAX_LONG_NAME = 64 * 1024;

/** Pulls exact byte counts out of an async chunk source without copying whole chunks. */
class ByteSource {
  private chunk: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    while (this.chunk.length === 0) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      this.chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    }
    return true;
  }

  /** Exactly n bytes, or fewer only at end of input. */
  async read(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) break;
      const take = Math.min(n - got, this.chunk.length);
      parts.push(this.chunk.subarray(0, take));
      this.chunk = this.chunk.subarray(take);
      got += take;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  /** 1..max bytes from what has arrived (zero-copy), or an empty buffer at end of input. */
  async readSome(max: number): Promise<Buffer> {
    if (!(await this.fill())) return Buffer.alloc(0);
    const take = Math.min(max, this.chunk.length);
    const out = this.chunk.subarray(0, take);
    this.chunk = this.chunk.subarray(take);
    return out;
  }

  /** Up to n bytes as they arrive (zero-copy slices). */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw unsafeTar('Cannot read tar entry: archive truncated');
      const take = Math.min(left, this.chunk.length);
      const out = this.chunk.subarray(0, take);
      this.chunk = this.chunk.subarray(take);
      left -= take;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) void _;
  }

  async drain(): Promise<void> {
    this.chunk = Buffer.alloc(0);
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
    }
  }

  async close(): Promise<void> {
    if (!this.done) await this.it.return?.();
  }
}

export interface TarEntry {
  header: TarHeader;
  /** The entry body; read it fully or not at all (the reader skips what is left). */
  body: AsyncIterable<Buffer>;
}

function applyPax(h: TarHeader, pax: Map<string, Buffer>): void {
  for (const [key, value] of pax) {
    const s = (): string => value.toString('utf8');
    const num = (): number => {
      const t = s();
      if (!/^-?[0-9]+(\.[0-9]+)?$/.test(t)) throw unsafeTar(`Cannot read PAX header: invalid ${key} "${t}"`);
      const v = Number(t);
      if (!Number.isFinite(v) || Math.abs(v) > Number.MAX_SAFE_INTEGER) throw unsafeTar(`Cannot read PAX header: ${key} out of range`);
      return v;
    };
    if (key === 'path') h.name = s();
    else if (key === 'linkpath') h.linkname = s();
    else if (key === 'size') {
      const v = num();
      if (v < 0 || !Number.isInteger(v)) throw unsafeTar('Cannot read PAX header: invalid size');
      h.size = v;
    } else if (key === 'uid' || key === 'gid') {
      const v = num();
      if (v < 0 || !Number.isInteger(v) || v > 0xffffffff) throw unsafeTar(`Cannot read PAX header: invalid ${key}`);
      h[key] = v;
    } else if (key === 'mtime') h.mtime = num();
    else if (key === 'uname') h.uname = s();
    else if (key === 'gname') h.gname = s();
    else if (key.startsWith('SCHILY.xattr.')) h.xattrs.set(key.slice('SCHILY.xattr.'.length), value);
    else if (key.startsWith('LIBARCHIVE.xattr.')) {
      h.xattrs.set(decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(value.toString('latin1'), 'base64'));
    } else if (key.startsWith('GNU.sparse.')) throw unsafeTar(`Cannot apply tar entry "${h.name}": sparse files are not supported`);
    // atime, ctime, comment, charset, hdrcharset, SCHILY.* others: ignored on purpose.
  }
}

/**
 * Iterate the entries of a tar stream. Handles ustar, PAX ('x' and 'g'), GNU
 * long names ('L'/'K') and base-256 numbers; refuses sparse files, unknown types,
 * bad checksums, truncation and meta headers over MAX_META_HEADER. After the
 * end-of-archive marker the rest of the input is drained (so a compressor's
 * trailer is verified). Breaking out of the loop closes the source.
 */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const src = new ByteSource(source[Symbol.asyncIterator]());
  let globalPax = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let finished = false;
  try {
    for (;;) {
      const block = await src.read(BLOCK);
      if (block.length === 0) break; // EOF without end marker: tolerated, like GNU tar
      if (block.length < BLOCK) throw unsafeTar('Cannot read tar header: archive truncated');
      if (isZeroBlock(block)) {
        await src.drain();
        break;
      }
      const raw = decodeRaw(block);
      if (raw.flag === 'x' || raw.flag === 'g' || raw.flag === 'L' || raw.flag === 'K') {
        const limit = raw.flag === 'L' || raw.flag === 'K' ? MAX_LONG_NAME : MAX_META_HEADER;
        if (raw.size > limit) throw unsafeTar(`Cannot read tar header: ${raw.flag} header of ${raw.size} bytes exceeds the ${limit}-byte limit`);
        const data = await src.read(raw.size);
        if (data.length < raw.size) throw unsafeTar('Cannot read tar header: archive truncated');
        await src.skip(padding(raw.size));
        if (raw.flag === 'x') pax = new Map([...(pax ?? []), ...decodePax(data)]);
        else if (raw.flag === 'g') globalPax = new Map([...globalPax, ...decodePax(data)]);
        else {
          const end = data.indexOf(0);
          const s = data.toString('utf8', 0, end === -1 ? data.length : end);
          if (raw.flag === 'L') longName = s;
          else longLink = s;
        }
        continue;
      }
      if (raw.flag === 'V') {
        await src.skip(raw.size + padding(raw.size));
        continue;
      }
      const header: TarHeader = {
        name: longName ?? raw.name,
        type: entryType(raw.flag, longName ?? raw.name),
        mode: raw.mode,
        uid: raw.uid,
        gid: raw.gid,
        size: raw.size,
        mtime: raw.mtime,
        linkname: longLink ?? raw.linkname,
        uname: raw.uname,
        gname: raw.gname,
        devmajor: raw.devmajor,
        devminor: raw.devminor,
        xattrs: new Map(),
      };
      applyPax(header, globalPax);
      if (pax) applyPax(header, pax);
      pax = undefined;
      longName = undefined;
      longLink = undefined;
      // Only regular files carry data; a size on anything else is skipped, never written.
      const dataSize = header.size;
      if (header.type !== 'file') header.size = 0;
      let remaining = header.size;
      const body = (async function* () {
        while (remaining > 0) {
          const piece = await src.readSome(remaining);
          if (piece.length === 0) throw unsafeTar(`Cannot read tar entry "${header.name}": archive truncated`);
          remaining -= piece.length;
          yield piece;
        }
      })();
      yield { header, body };
      if (remaining > 0) await src.skip(remaining);
      await src.skip(dataSize - header.size + padding(dataSize));
    }
    finished = true;
  } finally {
    if (!finished) await src.close().catch(() => undefined);
  }
}
