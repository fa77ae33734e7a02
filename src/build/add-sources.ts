import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { KilnError } from '../errors.js';
import type { BuildRuntime } from './runtime.js';

export interface Downloaded {
  url: string;
  /** File name in the destination: the last path component of the URL. */
  name: string;
  content: Buffer;
  digest: string;
  mtime?: Date;
}

/** Fetch ADD http(s) sources; with --checksum, refuse content whose digest differs. Not unpacked (BuildKit). */
export async function addUrlSources(urls: string[], checksum: string | undefined): Promise<Downloaded[]> {
  if (checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(checksum)) {
    throw new KilnError('ADD_CHECKSUM', `Invalid --checksum "${checksum}": expected sha256:<64 hex digits>`);
  }
  const out: Downloaded[] = [];
  for (const url of urls) {
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'follow' });
    } catch (err) {
      throw new KilnError('ADD_URL', `Cannot download "${url}": ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new KilnError('ADD_URL', `Cannot download "${url}": ${res.status} ${res.statusText}`);
    }
    const content = Buffer.from(await res.arrayBuffer());
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    if (checksum !== undefined && checksum !== digest) {
      throw new KilnError('ADD_CHECKSUM', `digest mismatch for "${url}": expected ${checksum}, got ${digest}`);
    }
    const lm = res.headers.get('last-modified');
    const name = posix.basename(new URL(url).pathname) || 'index.html';
    const d: Downloaded = { url, name, content, digest };
    if (lm) d.mtime = new Date(lm);
    out.push(d);
  }
  return out;
}

type Kind = 'tar' | 'gzip' | 'zstd' | 'bzip2' | 'xz' | undefined;

async function sniff(file: string): Promise<Kind> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    const b = buf.subarray(0, bytesRead);
    if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    if (b.length >= 3 && b.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
    if (b.length >= 6 && b[0] === 0xfd && b.toString('latin1', 1, 6) === '7zXZ\0') return 'xz';
    if (b.length >= 262 && b.toString('latin1', 257, 262) === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

/**
 * ADD's local-archive rule: a tar (plain, gzip, bzip2, xz, zstd) is unpacked
 * into `destDir` (path-safe, by src/layer's applyLayer); anything else is
 * copied as is (returns false). A compressed file that is not a tar is copied.
 */
export async function unpackArchive(rt: BuildRuntime, file: string, destDir: string): Promise<boolean> {
  const kind = await sniff(file);
  if (kind === undefined) return false;
  if (kind === 'bzip2' || kind === 'xz') {
    // Decompress to a temp file with the host tool first, then extract that tar.
    const tool = kind === 'bzip2' ? 'bzip2' : 'xz';
    const tmp = await mkdtemp(join(tmpdir(), 'kiln-add-'));
    try {
      const plain = join(tmp, 'archive.tar');
      const out = createWriteStream(plain);
      const child = spawn(tool, ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      await pipeline(child.stdout, out);
      const code = await exited;
      if (code !== 0) throw new KilnError('ADD_UNPACK', `Cannot unpack "${posix.basename(file)}": ${tool} exited ${code}: ${stderr.trim()}`);
      if ((await sniff(plain)) !== 'tar') return false;
      await rt.applyLayer(createReadStream(plain), destDir, {});
      return true;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  if (kind !== 'tar') {
    // Compressed: only unpack when the payload is a tar.
    const { createGunzip } = await import('node:zlib');
    if (kind === 'gzip') {
      const probe = createReadStream(file).pipe(createGunzip());
      const head = await new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        let n = 0;
        probe.on('data', (c: Buffer) => {
          chunks.push(c);
          n += c.length;
          if (n >= 512) {
            probe.destroy();
            resolve(Buffer.concat(chunks));
          }
        });
        probe.on('end', () => resolve(Buffer.concat(chunks)));
        probe.on('error', () => resolve(Buffer.alloc(0)));
      });
      if (head.length < 262 || head.toString('latin1', 257, 262) !== 'ustar') return false;
    }
  }
  await rt.applyLayer(createReadStream(file), destDir, {});
  return true;
}
